"""Simulator tasks: `invoke sim.artifacts --out DIR [--gateway-version X.Y.Z]`."""

from __future__ import annotations

from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from ibkr_ops.sim import artifacts as sim_artifacts
from ibkr_ops.sim import standin


@task(help={"out": "directory to write the simulated Gateway installer and IBC zip into",
            "gateway_version": "the Gateway release the installer claims, e.g. 10.19.2 "
                               f"(default {sim_artifacts.GATEWAY_VERSION})",
            "channel": "stable (default) or latest, as in IBKR's installer names",
            "arch": "x64 (default) or arm, as in IBKR's installer names",
            "knob": "KEY=VALUE baked into the build's sim.properties (repeatable), e.g. "
                    "login_delay=86400 for a build that never logs in"},
      iterable=["knob"])
def artifacts(c: Context, out: str = "dist/sim", gateway_version: str | None = None,
              channel: str = "stable", arch: str = "x64",
              knob: list[str] | None = None) -> None:
    """Write the simulated Gateway installer (with the Java stand-in, compiled here with the
    JDK), the simulated IBC zip and manifest.json."""
    try:
        knobs = [given.partition("=") for given in knob or []]
        if any(not sep for _, sep, _ in knobs):
            raise ValueError("--knob: expected KEY=VALUE, e.g. login_delay=86400")
        release = sim_artifacts.Release(gateway_version or sim_artifacts.GATEWAY_VERSION,
                                        channel, arch, tuple((k, v) for k, _, v in knobs))
    except ValueError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    try:
        written = sim_artifacts.write_all(Path(out), release)
    except OSError as exc:
        raise Exit(f"error: cannot write the artifacts to {out}: {exc.strerror}", code=1) from None
    except standin.BuildError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    for kind, path in written.items():
        print(f"{kind}: {path}")
    print(f"Gateway {release.version} {release.channel} linux-{release.arch} "
          f"(TWS_MAJOR_VRSN={release.tws_major_vrsn})")


ns = Collection("sim")
ns.add_task(artifacts)
