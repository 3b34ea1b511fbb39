"""Coverage-guided fuzzing of fastconv's public surface with atheris.

The bytes libFuzzer mutates are decoded by fuzz/cases.py (the same decoder
and registry as tests/test_fuzz.py) into hostile calls; a broken contract
raises FuzzFailure, which atheris reports as a crash with the input saved.
Native crashes and hangs (-timeout) are caught by libFuzzer itself.  The
address space is limited (FASTCONV_FUZZ_MEMORY_MB, default 1024), so an
allocation that cannot be made is a MemoryError, as it must be.

With FASTCONV_FUZZ_LOG=FILE a broken contract is appended to FILE (the
input in hex, then the message) and fuzzing goes on; fuzz/run_atheris.sh
restarts libFuzzer after a native crash or hang.

Usage (see fuzz/README.md):

    nice -n 19 python fuzz/atheris_fastconv.py -timeout=30 \\
        -max_total_time=3600 -print_final_stats=1 CORPUS_DIR
"""
import os
import resource
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["fastconv", "cases"]):
    import cases


LOG = os.environ.get("FASTCONV_FUZZ_LOG")     # record findings, go on
_seen = set()


def test_one_input(data):
    try:
        cases.run_case(data)
    except cases.FuzzFailure as exc:
        if not LOG:
            raise
        key = str(exc)[:60]
        if key not in _seen:            # one line per kind of finding
            _seen.add(key)
            with open(LOG, "a") as f:
                f.write(f"{data.hex()}\t{str(exc)[:300]!r}\n")


def main():
    limit = int(os.environ.get("FASTCONV_FUZZ_MEMORY_MB", "1024")) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
