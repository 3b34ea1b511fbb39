#!/usr/bin/env bash
# Fuzz for SECONDS in total, restarting libFuzzer after each native crash,
# hang or out-of-memory (its artifacts kept in OUT), at the lowest priority.
# Python-level findings go to OUT/findings.tsv (the input in hex, the
# message) without stopping.  Each session's statistics are in OUT/log.
#   usage: fuzz/run_atheris.sh SECONDS CORPUS_DIR OUT_DIR [python]
set -u
total=$1 corpus=$2 out=$3 py=${4:-python}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$corpus" "$out"
end=$(( $(date +%s) + total ))
while [ "$(date +%s)" -lt "$end" ]; do
    left=$(( end - $(date +%s) ))
    FASTCONV_FUZZ_LOG="$out/findings.tsv" nice -n 19 "$py" "$here/atheris_fastconv.py" \
        -timeout=60 -rss_limit_mb=6144 -max_total_time="$left" \
        -print_final_stats=1 -artifact_prefix="$out/" "$corpus" >> "$out/log" 2>&1
    echo "=== session ended $(date -u +%FT%TZ) status $?" >> "$out/log"
done
