"""The simulated Gateway's login lifecycle, as IBC drives it and logs it.

Cold logins (the login dialog, the password, the second factor), warm ones (relaunched with
an autorestart file), the restarts that lead from one to the next (IBC's RESTART,
``AutoRestartTime``, the control channel), and the login record each login and logout
writes (its format is ``logins``'s).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from typing import TYPE_CHECKING

from . import logins, upstream
from .config import EXIT_LOGIN_DIALOG_TIMEOUT, parse_restart_time

if TYPE_CHECKING:
    from .gateway import Gateway


class Login:
    """Logs one Gateway in and out, again after each restart, until its process ends."""

    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway
        self.warm = gateway.cfg.restart_dir is not None
        self.count = 0
        self.restart_pending = False  # a RESTART or PAUSE of IBC's command server is waiting
        self._restart = asyncio.Event()
        self._approve = asyncio.Event()

    async def lifecycle(self) -> None:
        """Log in, open the API, and on each restart close both and log in again warm (or
        exit for ibcstart.sh to relaunch, as under IBC)."""
        gw = self._gw
        while True:
            if not await self._login():
                return
            if not await gw.api_server.open():
                return
            gw.spawn(self._auto_restart())
            await self._restart.wait()
            self._restart.clear()
            self.restart_pending = False
            gw.sim("warm restart: closing the API and logging out")
            await gw.api_server.close()
            self.logout("restart")
            if gw.cfg.restart_mode == "exit":
                self._write_autorestart()
                gw.sim("exiting for ibcstart.sh to relaunch with -Drestart")
                gw.finish(0)
                return
            self.warm = True

    async def _login(self) -> bool:  # noqa: PLR0911 - one return per IBC login outcome
        """Cold or warm login; False when the process should not go on (exit already set)."""
        gw, cfg = self._gw, self._gw.cfg
        gw.state = "login"
        while True:
            if self.warm:
                gw.log("Re-starting session")
                self._consume_autorestart()
                await asyncio.sleep(cfg.login_delay)
                self.completed(warm=True)
                return True
            timeout = cfg.login_dialog_timeout
            gw.log("Starting session: will exit if login dialog is not displayed within "
                   f"{int(timeout)} seconds")
            if "no-login-dialog" in gw.faults:
                await asyncio.sleep(timeout)
                gw.log("IBC closing after TWS/Gateway failed to display login dialog")
                gw.log(f"Exiting after error with exit code={1112}")
                gw.finish(EXIT_LOGIN_DIALOG_TIMEOUT)
                return False
            gw.log("Login dialog WINDOW_OPENED: LoginState is LOGGED_OUT")
            if cfg.ibc_mode and not cfg.password:
                # IBC leaves the dialog for a person to fill in; nobody will here.
                gw.state = "login-dialog"
                gw.log("IbPassword is not set: the user must log in manually")
                return False
            gw.log(f"Setting Trading mode = {cfg.trading_mode}")
            gw.log("Setting user name")
            gw.log("Setting password")
            gw.log("Login attempt: 1")
            gw.log("Click button: Log In")
            await asyncio.sleep(cfg.login_delay)
            if "reject-login" in gw.faults:
                self._rejected()
                return False
            if cfg.second_factor == "off":
                self.completed(warm=False)
                return True
            gw.state = "second-factor"
            self._approve.clear()
            gw.log("Second Factor Authentication initiated")
            started = time.monotonic()
            if cfg.second_factor == "auto" and "twofa-timeout" not in gw.faults:
                gw.spawn(self._auto_approve(cfg.second_factor_delay))
            try:
                await asyncio.wait_for(self._approve.wait(), cfg.second_factor_timeout)
            except TimeoutError:
                pass
            else:
                self.completed(warm=False)
                return True
            gw.log(f"Duration since login: {int(time.monotonic() - started)} seconds")
            if cfg.relogin_after_2fa_timeout:
                gw.log("Re-login after second factor authentication timeout in 5 second")
                await asyncio.sleep(5)
                continue
            # IBC 3.24 (LoginManager): no relogin permitted, no exit either; the Gateway waits
            # at its login dialog. Exit 1111 (87) is for an approved login that never completes.
            gw.log("Re-login after second factor authentication timeout not required")
            gw.state = "login-dialog"
            return False

    def _rejected(self) -> None:
        gw, cfg = self._gw, self._gw.cfg
        gw.state = "login-failed"
        gw.log("Login failed")
        gw.log("Login error message: Unrecognized Username or Password")
        if cfg.ibc_mode and cfg.session_id:
            # IBC 3.24 dismisses the dialog and cold-restarts: ibcstart.sh relaunches Java,
            # which tries the same password again, and again.
            gw.log("Cold restart after Login Failed dialog encountered")
            (cfg.settings_dir / f"COLDRESTART{cfg.session_id}").touch()
            gw.finish(0)

    async def _auto_approve(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._gw.state == "second-factor" and "twofa-timeout" not in self._gw.faults:
            self._gw.sim("second factor approved (automatically)")
            self.approve()

    def approve(self) -> bool:
        """The person with the phone approves; False when no prompt is pending."""
        if self._gw.state != "second-factor":
            return False
        self._approve.set()
        return True

    def completed(self, warm: bool) -> None:
        """The login has completed: IB is reachable and the login record says who holds what."""
        gw, cfg = self._gw, self._gw.cfg
        gw.state = "logged-in"
        gw.logged_in = True
        gw.connected_to_ib = "connectivity-lost" not in gw.faults
        self.count += 1
        gw.log("Login has completed")
        for account in cfg.accounts:
            logins.close_stale(cfg.logins_path, account)
            logins.record(cfg.logins_path, "login", account=account, user=cfg.login_id,
                          mode=cfg.trading_mode, warm=warm, instance=gw.instance,
                          api_port=cfg.api_port)
        if "existing-session" in gw.faults:
            gw.spawn(self.existing_session())

    def logout(self, reason: str) -> None:
        gw, cfg = self._gw, self._gw.cfg
        if not gw.logged_in:
            return
        gw.logged_in = False
        gw.connected_to_ib = False
        for account in cfg.accounts:
            logins.record(cfg.logins_path, "logout", account=account, user=cfg.login_id,
                          mode=cfg.trading_mode, reason=reason, instance=gw.instance,
                          api_port=cfg.api_port)

    async def existing_session(self) -> None:
        """Another login took this user's session: the API stays up but IB is gone."""
        gw = self._gw
        await asyncio.sleep(0)
        if not gw.logged_in:
            return
        gw.log("detected dialog entitled: Existing session detected; event=Activated")
        gw.log("End this session and let the other session proceed (scenario 2)")
        self.logout("existing-session")
        gw.state = "session-lost"
        gw.api_server.broadcast(*upstream.LOST)

    def reconnect_account(self) -> None:
        """Ctrl-Alt-R: a lost session (existing-session fault cleared) comes back."""
        gw = self._gw
        if gw.state == "session-lost" and "existing-session" not in gw.faults:
            self.completed(warm=True)
            gw.api_server.broadcast(*upstream.RESTORED)

    def request_restart(self, why: str) -> None:
        if self._gw.logged_in:
            self._gw.sim(f"restart requested ({why})")
            self._restart.set()

    def _consume_autorestart(self) -> None:
        """The real Gateway deletes the autorestart file it was relaunched for."""
        name = self._gw.cfg.restart_dir or ""
        if not name:
            return
        path = self._gw.cfg.settings_dir / name / "autorestart"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def _write_autorestart(self) -> None:
        folder = self._gw.cfg.user_dir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "autorestart").write_text(f"{int(time.time())}\n")
        self._gw.log(f"Auto-restart file written: {folder / 'autorestart'}")

    async def _auto_restart(self) -> None:
        """AutoRestartTime from config.ini: a daily warm restart at that local time."""
        value = self._gw.cfg.auto_restart_time
        if not value:
            return
        at = parse_restart_time(value)
        if at is None:
            self._gw.log(f"Invalid AutoRestartTime setting: '{value}' (ignored)")
            return
        self._gw.log(f"Setting auto-restart time to {at.strftime('%I:%M %p')}")
        now = dt.datetime.now()
        await asyncio.sleep((next_occurrence(now, at) - now).total_seconds())
        self.request_restart("AutoRestartTime")


def next_occurrence(now: dt.datetime, at: dt.time) -> dt.datetime:
    """The next local time ``at`` strictly after ``now`` (today or tomorrow)."""
    target = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if target <= now:
        target += dt.timedelta(days=1)
    return target
