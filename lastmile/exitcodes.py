"""The exit codes of every `lastmile` verb: one table, documented in the README.

    0    OK           the command did what it says; nothing to report
    1    FINDINGS     it ran and found something: policy findings, a plan with changes, an endpoint that
                      rolled back or runs something else, a golden inference that failed
    2    REFUSED      the input was refused (bad argument, bad stack config, unknown stack or git ref);
                      a message names the problem and nothing was written or deployed
    3    UNAVAILABLE  it could not check: the engine, the cluster, AWS or a tool it needs is not there
    4    FAILED       the engine ran and the operation failed (e.g. `up` stopped at a resource that never
                      became ready); what had not been reached stays as it was
    5    CRASHED      lastmile failed: an error no verb expected (a corrupt state file, a state directory it
                      cannot write, a bug); one line names the cause, the traceback goes to a log file
                      whose path is printed -- never 0 or 1, so a workflow that accepts "changes" (1)
                      cannot mistake a crash for them
    130  INTERRUPTED  stopped by Ctrl-C (SIGINT), 128 + 2 as a shell reports it
    141  BROKEN_PIPE  the reader of its output went away (`lastmile cluster status | head -2`); nothing more
                      is printed, 128 + 13 as a shell reports SIGPIPE
    143  TERMINATED   stopped by SIGTERM, 128 + 15
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1
    REFUSED = 2
    UNAVAILABLE = 3
    FAILED = 4
    CRASHED = 5
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    TERMINATED = 143
