"""Run fuzz cases in this process, so that a crash ends only it.

Reads lines "NAME HEX" from stdin (NAME "-": the case's first byte picks
the function; "!crash" and "!hang" exercise the harness itself) and answers
each with one JSON line on the original stdout; everything the calls print
goes to stderr.  The address space is limited (FASTCONV_FUZZ_MEMORY_MB,
default 1024; not under AddressSanitizer, which reserves its own), so an
allocation that would exhaust the machine fails as MemoryError instead.
"""
import json
import os
import sys
import traceback


def _limit_memory():
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        return
    import resource
    limit = int(os.environ.get("FASTCONV_FUZZ_MEMORY_MB", "1024")) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main():
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)                      # stray prints cannot break the protocol
    sys.stdout = sys.stderr
    _limit_memory()
    import cases

    def answer(**msg):
        proto.write(json.dumps(msg) + "\n")
        proto.flush()

    answer(status="ready")
    for line in sys.stdin:
        name, _, hexdata = line.strip().partition(" ")
        if name == "!crash":
            os.abort()
        if name == "!hang":
            while True:
                pass
        try:
            cases.run_case(bytes.fromhex(hexdata), None if name == "-" else name)
            answer(status="ok")
        except cases.FuzzFailure as exc:
            answer(status="fail", message=str(exc))
        except Exception:                 # noqa: BLE001 - a harness bug, reported
            answer(status="fail", message=traceback.format_exc())


if __name__ == "__main__":
    main()
