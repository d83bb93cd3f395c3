"""The simulated installation's ``bin/java``: answer like Java 17 and run "IBC + Gateway".

IBC's ``ibcstart.sh`` runs ``java -XshowSettings:properties`` once, then
``java <module flags> -cp <jars> <vmoptions> -DjtsConfigDir=DIR -Dibcsessionid=ID
[-Drestart=SUBDIR] ibcalpha.ibc.IbcGateway INI [[FIXUSER FIXPW] USER PW] [MODE]``.
The password is read from INI; ``USER PW`` on the command line also work (IBC allows it) but
every local user can read a command line.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from pathlib import Path

from .config import EXIT_INI_MISSING, ConfigError, SimConfig
from .gateway import run_config

JAVA_VERSION = "17.0.10"
JAVA_RUNTIME_VERSION = "17.0.10+7"
GATEWAY_MAIN = "ibcalpha.ibc.IbcGateway"
TWS_MAIN = "ibcalpha.ibc.IbcTws"


def show_properties(java_home: str) -> str:
    """What ``java -XshowSettings:properties`` prints (on stderr) for a Java 17 runtime."""
    props = {
        "file.encoding": "UTF-8",
        "file.separator": "/",
        "java.class.path": "",
        "java.class.version": "61.0",
        "java.home": java_home,
        "java.io.tmpdir": tempfile.gettempdir(),
        "java.runtime.name": "OpenJDK Runtime Environment",
        "java.runtime.version": JAVA_RUNTIME_VERSION,
        "java.specification.version": "17",
        "java.vendor": "Eclipse Adoptium",
        "java.version": JAVA_VERSION,
        "java.version.date": "2024-01-16",
        "java.vm.name": "OpenJDK 64-Bit Server VM",
        "java.vm.version": JAVA_RUNTIME_VERSION,
        "line.separator": "\\n",
        "os.arch": "amd64" if platform.machine() in ("x86_64", "AMD64") else platform.machine(),
        "os.name": "Linux",
        "os.version": platform.release(),
        "path.separator": ":",
        "user.dir": os.getcwd(),
        "user.home": str(Path.home()),
        "user.name": os.environ.get("USER", ""),
    }
    lines = ["Property settings:"] + [f"    {k} = {v}" for k, v in sorted(props.items())]
    return "\n".join(lines) + "\n"


USAGE = "Usage: java [options] <mainclass> [args...]\n           (to execute a class)\n"


def java_main(argv: list[str]) -> int:  # noqa: PLR0912 - the java launcher's option grammar
    """``--as-java [--install-dir DIR] [--java-home DIR] <java arguments>``."""
    install_dir: Path | None = None
    java_home = ""
    while argv[:1] and argv[0] in ("--install-dir", "--java-home"):
        if argv[0] == "--install-dir":
            install_dir = Path(argv[1])
        else:
            java_home = argv[1]
        argv = argv[2:]
    props: dict[str, str] = {}
    heap_mb: int | None = None
    show = False
    main_class = ""
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-cp", "-classpath", "--class-path", "--module-path", "-p"):
            i += 2
            continue
        if arg in {"-version", "--version"}:
            sys.stderr.write(f'openjdk version "{JAVA_VERSION}" 2024-01-16\n'
                             f"OpenJDK Runtime Environment (build {JAVA_RUNTIME_VERSION})\n")
            return 0
        if arg.startswith("-XshowSettings"):
            show = True
        elif arg.startswith("-D"):
            key, _, value = arg[2:].partition("=")
            props[key] = value
        elif arg.startswith("-Xmx"):
            heap_mb = heap_size_mb(arg[4:])  # the last one wins, as in the JVM
            if heap_mb is None:
                sys.stderr.write(f"Invalid maximum heap size: {arg}\n{JVM_FAILED}")
                return 1
        elif arg.startswith("-"):
            pass  # --add-opens=…, -XX:…
        else:
            main_class = arg
            rest = argv[i + 1:]
            break
        i += 1
    if show:
        sys.stderr.write(show_properties(java_home))
    if not main_class:
        sys.stderr.write(USAGE)
        return 1
    return _run_main(main_class, rest, props, heap_mb, install_dir)


def _run_main(main_class: str, rest: list[str], props: dict[str, str], heap_mb: int | None,
              install_dir: Path | None) -> int:
    """What the JVM runs once its options are read: only IBC's Gateway class exists here."""
    if main_class == TWS_MAIN:
        print("ibkr-gateway-sim: only the IB Gateway is simulated, not TWS", file=sys.stderr)
        return 1
    if main_class != GATEWAY_MAIN:
        sys.stderr.write(f"Error: Could not find or load main class {main_class}\n")
        return 1
    try:
        cfg = ibc_config(props, rest, install_dir)
    except ConfigError as exc:
        _ibc_error(str(exc), exc.exit_code)
        return exc.exit_code
    cfg.heap_mb = heap_mb
    return run_config(cfg)


JVM_FAILED = ("Error: Could not create the Java Virtual Machine.\n"
              "Error: A fatal exception has occurred. Program will exit.\n")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def heap_size_mb(text: str) -> int | None:
    """The value of ``-Xmx<size>`` in MiB (``1024m``, ``1g``, bytes); None when Java refuses it."""
    number, unit = text.rstrip("kKmMgGtT"), text[len(text.rstrip("kKmMgGtT")):].lower()
    if not number.isdigit() or len(unit) > 1 or int(number) == 0:
        return None
    return int(number) * _SIZE_UNITS[unit] // 1024**2


def _ibc_error(message: str, code: int) -> None:
    # ibcstart.sh discards java's stderr, so IBC's lines go to stdout.
    print(f"IBC: {message}", flush=True)
    ibc_code = 1024 + code if code >= 76 else code  # IBC exits with 1103 etc.; the shell sees % 256
    print(f"IBC: Exiting after error with exit code={ibc_code}", flush=True)
    print(f"ibkr-gateway-sim: error: {message}", file=sys.stderr, flush=True)


def ibc_config(props: dict[str, str], args: list[str], install_dir: Path | None) -> SimConfig:
    """A SimConfig from what ibcstart.sh passes, config.ini and the installation defaults."""
    if not args:
        raise ConfigError("incorrect number of arguments passed", 1102 % 256)
    cfg = SimConfig(ibc_mode=True, restart_mode="exit")
    if install_dir is not None:
        cfg.apply_sim_properties(install_dir / "sim.properties")
    ini = Path(args[0])
    if not ini.is_file():
        raise ConfigError(f'ini file "{ini}" either does not exist, or is a directory.  '
                          "quitting...", EXIT_INI_MISSING)
    cfg.apply_ini(ini)
    cfg.apply_env(os.environ)
    extra = args[1:]
    mode = ""
    if len(extra) in (1, 3, 5):
        mode = extra[-1]
        extra = extra[:-1]
    if len(extra) >= 2:
        user, password = extra[-2], extra[-1]
        if user:
            cfg.login_id = user
        if password:
            cfg.password = password
    if mode:
        cfg.set_trading_mode(mode)
    settings = props.get("jtsConfigDir", "")
    if settings:
        cfg.settings_dir = Path(settings)
    cfg.apply_jts_ini(cfg.settings_dir / "jts.ini")
    cfg.restart_dir = props.get("restart") or None
    cfg.session_id = props.get("ibcsessionid", "")
    cfg.finish()
    return cfg
