-- Rate-limit counters are written on every API call and worthless after a crash:
-- keep them out of the WAL so each check costs no disk flush.
ALTER TABLE "rate_limits" SET UNLOGGED;
