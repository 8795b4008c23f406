-- Day rollups of the 5-minute statistics, so that a period of many days
-- (a custom range, or a campaign's figures from its start to a period's end)
-- sums a few rows per day instead of every 5-minute row (issue 7: statistics
-- answer in p99 < 50 ms with 10 million attempts in the store).
--
-- day_start is UTC ms floored to a whole UTC day. A row is added to in the
-- same statement sequence and transaction as the 5-minute row it sums (see
-- engine/src/store/sqlite/stats.rs, add_counters), so the two never
-- disagree. Readers take whole UTC days inside a period from here and the
-- partial days at its ends from stats_counters, so local days of any time
-- zone still add up exactly.
CREATE TABLE stats_daily (
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    day_start   BIGINT NOT NULL,
    counter     TEXT   NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, day_start, counter)
);

-- The days counted before this table existed (floored like bucket_start,
-- also for instants before 1970).
INSERT INTO stats_daily (campaign_id, day_start, counter, n)
SELECT campaign_id, day_start, counter, SUM(n)
FROM (
    SELECT campaign_id, counter, n,
           bucket_start - (((bucket_start % 86400000) + 86400000) % 86400000) AS day_start
    FROM stats_counters
)
GROUP BY campaign_id, day_start, counter;
