"""Stop signals held around C code that would drop them, and delivered afterwards."""
from __future__ import annotations

import signal
import threading

import pytest

from pmtoolkit.core.signals import held


def test_a_ctrl_c_inside_the_block_arrives_when_it_ends():
    reached_end_of_block = False
    with pytest.raises(KeyboardInterrupt):
        with held():
            # sent to this thread: os.kill's process-wide signal may go to any other thread
            # that does not block it (earlier tests leave some alive), and arrive late
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            # a C library's own handler, installed now, would not see it: it is pending
            assert signal.SIGINT in signal.sigpending()
            reached_end_of_block = True
        pytest.fail("the held Ctrl-C was not delivered")
    assert reached_end_of_block
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_threads_started_inside_are_born_blocking_the_stop_signals():
    masks = []
    with held():
        t = threading.Thread(target=lambda: masks.append(
            signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        t.start()
        t.join()
    assert {signal.SIGINT, signal.SIGTERM} <= masks[0]
