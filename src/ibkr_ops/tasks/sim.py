"""Simulator tasks: `invoke sim.artifacts --out DIR`."""

from __future__ import annotations

from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from ibkr_ops.sim import artifacts as sim_artifacts
from ibkr_ops.sim import standin


@task(help={"out": "directory to write the simulated Gateway installer and IBC zip into"})
def artifacts(c: Context, out: str = "dist/sim") -> None:
    """Write the simulated Gateway installer (with the Java stand-in, compiled here with the
    JDK), the simulated IBC zip and manifest.json."""
    try:
        written = sim_artifacts.write_all(Path(out))
    except OSError as exc:
        raise Exit(f"error: cannot write the artifacts to {out}: {exc.strerror}", code=1) from None
    except standin.BuildError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    for kind, path in written.items():
        print(f"{kind}: {path}")
    print(f"Gateway {sim_artifacts.GATEWAY_VERSION} (TWS_MAJOR_VRSN={sim_artifacts.TWS_MAJOR_VRSN})")


ns = Collection("sim")
ns.add_task(artifacts)
