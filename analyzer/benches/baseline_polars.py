"""What a user would do instead of `weightwatch analyze`: Python polars
computing 14 plain per-account aggregates over a JSON Lines request log.
Prints seconds and peak RSS. Usage: python3 baseline_polars.py FILE"""
import resource
import sys
import time

import polars as pl

t = time.time()
out = (
    pl.scan_ndjson(sys.argv[1], infer_schema_length=10000)
    .group_by("account_id")
    .agg(
        pl.len(),
        pl.col("prompt_tokens").sum(),
        pl.col("completion_tokens").sum().alias("ct"),
        pl.col("completion_tokens").mean().alias("ctm"),
        (pl.col("conversation_turns") == 0).mean().alias("st"),
        (pl.col("status") == 429).mean().alias("r429"),
        pl.col("logprobs").fill_null(False).mean().alias("lp"),
        (pl.col("temperature") == 0).mean().alias("t0"),
        pl.col("api_key_id").n_unique().alias("k"),
        pl.col("src_ip").n_unique().alias("ip"),
        pl.col("model").n_unique().alias("m"),
        pl.col("prompt").n_unique().alias("dp"),
        pl.col("ts").min().alias("a"),
        pl.col("ts").max().alias("b"),
    )
    .collect(engine="streaming")
)
secs = time.time() - t
print(f"polars {pl.__version__}: {out.height} accounts, {secs:.2f} s, "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
