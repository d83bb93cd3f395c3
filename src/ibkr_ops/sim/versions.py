"""Versions the simulated artifacts claim to be."""

GATEWAY_VERSION = "10.30.1"
TWS_MAJOR_VRSN = "1030"
IBC_VERSION = "3.24.1"
