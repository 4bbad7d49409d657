"""Named, append-only schema migrations.

Never edit or reorder an entry that has shipped: add a new one at the end, numbered above the
last (the numbers follow the order they apply in; `RENAMED` keeps two renumbered entries
applied in older stores). Each is applied once,
inside a transaction, and recorded in the `migrations` table (the pattern of simonw/llm), on
DuckDB and PostgreSQL alike (`evals.store.migrations`): use only the portable types VARCHAR,
TEXT, BIGINT, INTEGER, BOOLEAN, DOUBLE PRECISION, TIMESTAMP and JSON.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE models (
            name VARCHAR PRIMARY KEY,
            litellm_model VARCHAR,
            api_base VARCHAR,
            tier VARCHAR,
            input_cost_per_token DOUBLE,
            output_cost_per_token DOUBLE,
            gpu_hourly_usd DOUBLE,
            calibration JSON,
            source VARCHAR,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE datasets (
            name VARCHAR PRIMARY KEY,
            source VARCHAR,
            license VARCHAR,
            description VARCHAR,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE items (
            dataset VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            task VARCHAR NOT NULL,
            prompt VARCHAR,
            messages JSON,
            reference VARCHAR,
            grader VARCHAR,
            split VARCHAR,
            metadata JSON,
            PRIMARY KEY (dataset, item_id)
        );
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,
            dataset VARCHAR,
            source VARCHAR,
            params JSON,
            status VARCHAR NOT NULL,
            started_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            finished_at TIMESTAMP,
            n_outcomes BIGINT,
            spend_usd DOUBLE
        );
        CREATE TABLE outcomes (
            dataset VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            params_hash VARCHAR NOT NULL DEFAULT '',
            sample INTEGER NOT NULL DEFAULT 0,
            response VARCHAR,
            score DOUBLE,
            prompt_tokens BIGINT,
            completion_tokens BIGINT,
            cost_usd DOUBLE,
            latency_ms DOUBLE,
            ttft_ms DOUBLE,
            error VARCHAR,
            run_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (dataset, item_id, model, params_hash, sample)
        );
        CREATE TABLE policies (
            policy_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            family VARCHAR NOT NULL,
            dataset VARCHAR,
            data_hash VARCHAR,
            requirement VARCHAR,
            baseline VARCHAR,
            artifact JSON NOT NULL,
            metrics JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE requests (
            request_id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            policy VARCHAR,
            requested_model VARCHAR NOT NULL,
            model VARCHAR,
            task VARCHAR,
            stream BOOLEAN NOT NULL DEFAULT false,
            attempts INTEGER NOT NULL DEFAULT 0,
            fallbacks INTEGER NOT NULL DEFAULT 0,
            status INTEGER NOT NULL,
            error VARCHAR,
            prompt_tokens BIGINT,
            completion_tokens BIGINT,
            cost_usd DOUBLE,
            baseline_cost_usd DOUBLE,
            latency_ms DOUBLE,
            ttft_ms DOUBLE,
            prompt VARCHAR
        );
        """,
    ),
    (
        # The proxy counted the tokens itself (the upstream sent no usage, or a stream broke
        # off before it): cost_usd is an estimate, not the provider's bill.
        "0010_requests_cost_estimated",
        "ALTER TABLE requests ADD COLUMN cost_estimated BOOLEAN DEFAULT false",
    ),
    (
        # Issue 11, the loop. Policy versions (append-only, per name), what happened to them
        # (append-only events; the serving version is the latest `promoted`), graded shadow
        # pairs (one per request) and client feedback (one per request, the last score wins).
        # Policies stored before versions existed become version 1, 2, ... of their name (by
        # creation time), the newest one serving.
        "0030_loop",
        """
        CREATE TABLE policy_versions (
            name VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            policy_id VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            parent_version INTEGER,
            detail JSON,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (name, version)
        );
        CREATE TABLE policy_events (
            name VARCHAR NOT NULL,
            seq BIGINT NOT NULL,
            version INTEGER NOT NULL,
            event VARCHAR NOT NULL,
            detail JSON,
            happened_at TIMESTAMP NOT NULL,
            PRIMARY KEY (name, seq)
        );
        CREATE TABLE loop_pairs (
            request_id VARCHAR PRIMARY KEY,
            policy VARCHAR NOT NULL,
            version INTEGER,
            epoch BIGINT NOT NULL,
            policy_id VARCHAR,
            graded_at TIMESTAMP NOT NULL,
            grader VARCHAR NOT NULL,
            routed_model VARCHAR NOT NULL,
            baseline_model VARCHAR NOT NULL,
            routed_score DOUBLE PRECISION NOT NULL,
            baseline_score DOUBLE PRECISION NOT NULL,
            is_free BOOLEAN NOT NULL,
            routed_cost_usd DOUBLE PRECISION,
            baseline_cost_usd DOUBLE PRECISION,
            shadow_cost_usd DOUBLE PRECISION,
            task VARCHAR,
            prompt_sha256 VARCHAR
        );
        CREATE TABLE feedback (
            request_id VARCHAR PRIMARY KEY,
            score DOUBLE PRECISION NOT NULL,
            thumbs VARCHAR,
            comment TEXT,
            policy VARCHAR,
            model VARCHAR,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        INSERT INTO policy_versions (name, version, policy_id, source, created_at)
        SELECT name, CAST(row_number() OVER (PARTITION BY name ORDER BY created_at, policy_id)
                          AS INTEGER),
               policy_id, 'fit', created_at
        FROM policies;
        INSERT INTO policy_events (name, seq, version, event, detail, happened_at)
        SELECT name, 1, max(version), 'promoted', NULL, max(created_at)
        FROM policy_versions GROUP BY name;
        """,
    ),
    (
        # Small values shared by every process using the store (per-key request counts and
        # spend, cooldowns): `Store.increment()` adds to one atomically.
        "0040_counters",
        """
        CREATE TABLE counters (
            scope VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            value DOUBLE PRECISION NOT NULL DEFAULT 0,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (scope, key)
        );
        """,
    ),
    (
        "0050_adaptive_drops",
        # Candidates an adaptive eval stopped measuring (evals/adaptive): `fit` leaves them out
        # instead of treating the items they were not run on as failures.
        """
        CREATE TABLE adaptive_drops (
            dataset VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            params_hash VARCHAR NOT NULL,
            after_items INTEGER NOT NULL,
            reason TEXT NOT NULL,
            requirement TEXT NOT NULL,
            run_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (dataset, model, params_hash)
        );
        """,
    ),
    (
        # Issue 12: the client protocol a request came in by (chat, responses, anthropic,
        # embeddings, completions), its conversation (router/sessions.py), and the token kinds
        # priced apart: input read from or written to a prompt cache, and output spent reasoning
        # (part of completion_tokens).
        "0060_requests_protocol_session_tokens",
        """
        ALTER TABLE requests ADD COLUMN protocol VARCHAR;
        ALTER TABLE requests ADD COLUMN session VARCHAR;
        ALTER TABLE requests ADD COLUMN cached_tokens BIGINT;
        ALTER TABLE requests ADD COLUMN cache_write_tokens BIGINT;
        ALTER TABLE requests ADD COLUMN reasoning_tokens BIGINT;
        """,
    ),
    (
        # Issue 14: why each request went where it did (the policy plan's reason, pass-through,
        # or the violation fallback), for the dashboard's request log.
        "0080_requests_route_reason",
        "ALTER TABLE requests ADD COLUMN route_reason VARCHAR",
    ),
    (
        # Issue 13, many replicas on one store. Each request's client key (by its name in
        # `serve --keys`), the keys' limits (no secrets), their shared usage per budget period
        # (nano-USD, so sums are exact), a ledger of the reservations of requests in flight
        # (settled exactly once, kept an hour so a retried settlement is recognised; a dead
        # replica's become spent), the replicas' heartbeats, and an order in which every
        # replica reads the graded pairs (assigned under a lock by the writer, so a reader
        # never sees a later pair before an earlier one).
        "0085_replicas_keys",
        """
        ALTER TABLE requests ADD COLUMN key_name VARCHAR;
        ALTER TABLE loop_pairs ADD COLUMN seq BIGINT;
        CREATE TABLE api_keys (
            name VARCHAR NOT NULL,
            rpm INTEGER,
            budget_usd DOUBLE PRECISION,
            budget_period VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (name)
        );
        CREATE TABLE key_usage (
            name VARCHAR NOT NULL,
            period_start TIMESTAMP NOT NULL,
            spent_nusd BIGINT NOT NULL DEFAULT 0,
            reserved_nusd BIGINT NOT NULL DEFAULT 0,
            requests BIGINT NOT NULL DEFAULT 0,
            minute_start TIMESTAMP,
            minute_requests INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (name, period_start)
        );
        CREATE TABLE key_holds (
            request_id VARCHAR NOT NULL,
            replica VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            period_start TIMESTAMP NOT NULL,
            reserved_nusd BIGINT NOT NULL DEFAULT 0,
            settled BOOLEAN NOT NULL DEFAULT false,
            reaped BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (request_id)
        );
        CREATE INDEX key_holds_by_time ON key_holds (created_at);
        CREATE TABLE replicas (
            replica VARCHAR NOT NULL,
            host VARCHAR,
            pid INTEGER,
            started_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            seen_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (replica)
        );
        """,
    ),
    (
        # Issue 23: what a translation for a chat-completions model left out of an agent's
        # request (hints such as thinking modes, offered built-in tools), by name.
        "0090_requests_dropped",
        "ALTER TABLE requests ADD COLUMN dropped VARCHAR",
    ),
    (
        # Issue 26: how many rounds a refine candidate's answer took (NULL: answered once).
        "0100_outcomes_rounds",
        "ALTER TABLE outcomes ADD COLUMN rounds INTEGER",
    ),
    (
        # Issue 26: how many rounds a served refine variant ran (NULL: one call).
        "0110_requests_rounds",
        "ALTER TABLE requests ADD COLUMN rounds INTEGER",
    ),
    (
        # Issue 26: every round of a refine candidate's answer (`called`: the model asked, the
        # escalation model for an escalated last round), so an outcome's cost is the sum of its
        # rounds; which model a refine variant escalated to, on its outcome and its request row.
        "0120_refine_rounds_escalation",
        """
        CREATE TABLE outcome_rounds (
            dataset VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            params_hash VARCHAR NOT NULL,
            sample INTEGER NOT NULL,
            round INTEGER NOT NULL,
            called VARCHAR NOT NULL,
            passed BOOLEAN NOT NULL,
            prompt_tokens BIGINT,
            completion_tokens BIGINT,
            cost_usd DOUBLE PRECISION,
            latency_ms DOUBLE PRECISION,
            error TEXT,
            run_id VARCHAR,
            PRIMARY KEY (dataset, item_id, model, params_hash, sample, round)
        );
        ALTER TABLE outcomes ADD COLUMN escalated VARCHAR;
        ALTER TABLE requests ADD COLUMN escalated VARCHAR;
        """,
    ),
    (
        # Issue 25: the human review queue. A request a policy routed to a reviewer is answered
        # with a draft and queued here, in the request log's transaction (router/log); a
        # verdict (policies/loop/reviews.py) marks it done and becomes a traffic outcome.
        "0130_reviews",
        """
        ALTER TABLE requests ADD COLUMN review_id VARCHAR;
        CREATE TABLE reviews (
            review_id VARCHAR NOT NULL,
            request_id VARCHAR NOT NULL,
            policy VARCHAR,
            policy_version INTEGER,
            epoch BIGINT,
            policy_id VARCHAR,
            baseline VARCHAR,
            reviewer VARCHAR NOT NULL,
            draft_model VARCHAR,
            task VARCHAR,
            prompt TEXT,
            answer TEXT,
            review_cost_usd DOUBLE PRECISION,
            draft_cost_usd DOUBLE PRECISION,
            created_at TIMESTAMP NOT NULL,
            status VARCHAR NOT NULL DEFAULT 'pending',
            score DOUBLE PRECISION,
            corrected_answer TEXT,
            reviewed_at TIMESTAMP,
            PRIMARY KEY (review_id)
        );
        CREATE INDEX reviews_by_status ON reviews (status, created_at);
        """,
    ),
]

# Migrations renumbered so that the numbers follow the order they apply in: new name -> the
# name stores migrated before the renumbering recorded (such a store counts it as applied).
RENAMED = {
    "0060_requests_protocol_session_tokens": "0020_requests_protocol_session_tokens",
    "0085_replicas_keys": "0045_replicas_keys",
}
