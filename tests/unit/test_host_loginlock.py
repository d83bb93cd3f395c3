"""One cold login at a time on a host: the lock the restart runner takes, held by a real
flock(2) from another open file, as another Gateway's runner would hold it."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibkr_ops.host import loginlock
from ibkr_ops.host.config import HostConfig


@pytest.fixture
def other(tmp_path: Path) -> Iterator[int]:
    """Another Gateway's login under way: the lock held on another descriptor."""
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield fd
    os.close(fd)


def config(tmp_path: Path) -> HostConfig:
    return HostConfig(login_lock=str(tmp_path))


def test_a_free_lock_is_taken_at_once_and_excludes_the_others(tmp_path: Path) -> None:
    steps: list[str] = []
    with loginlock.held(config(tmp_path), steps, progress=steps.append):
        probe = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(probe)
    assert steps == []
    free = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(free, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after the block
    os.close(free)


def test_the_wait_says_what_it_waits_for_and_ends_when_the_other_login_does(
        tmp_path: Path, other: int) -> None:
    steps: list[str] = []
    shown: list[str] = []

    def progress(text: str) -> None:
        shown.append(text)
        fcntl.flock(other, fcntl.LOCK_UN)  # the other Gateway's login is done

    with loginlock.held(config(tmp_path), steps, progress, wait_s=60):
        pass
    (line,) = shown
    assert re.fullmatch(r"waiting for another Gateway of this host to finish its login: "
                        r"\d+ s of 60 s", line)
    (step,) = steps
    assert re.fullmatch(r"waited \d+ s for another Gateway of this host to finish its login",
                        step)


def test_past_the_bound_the_login_goes_ahead_and_says_so(tmp_path: Path, other: int) -> None:
    steps: list[str] = []
    entered = False
    with loginlock.held(config(tmp_path), steps, progress=lambda text: None, wait_s=0.01):
        entered = True
    assert entered
    assert steps == ["another Gateway of this host was still logging in after 0 s; "
                     "logging in anyway"]


def test_a_lock_that_cannot_be_opened_does_not_stop_the_login(tmp_path: Path) -> None:
    steps: list[str] = []
    with loginlock.held(config(tmp_path / "absent"), steps, progress=steps.append):
        pass
    assert steps == [f"login lock {tmp_path / 'absent'} not taken (No such file or directory); "
                     "logging in without it"]
