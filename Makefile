# Two commands for a newcomer (README): `make demo` and `make test`.
# Both start throwaway PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set; `make test`
# also starts a throwaway 3-shard Redis Cluster unless REDIS_CLUSTER_URL is set.

.PHONY: demo test test-n8n build lint sqlx-prepare sqlx-check bench-partitions ci

# Ctrl-C is how the demo ends (exit 130): not an error for make to report.
demo:
	scripts/with-services.sh scripts/demo.sh || [ $$? -eq 130 ]

test:
	GENESIS_REDIS_CLUSTER=1 scripts/with-services.sh scripts/test.sh

# Only the tests that run a real n8n 2.8.4 (make test runs them too).
test-n8n:
	scripts/with-services.sh scripts/test-n8n.sh

build:
	cargo build --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Regenerate / check the sqlx offline query cache (.sqlx/) after changing a query.
sqlx-prepare:
	scripts/with-services.sh scripts/sqlx-prepare.sh

sqlx-check:
	scripts/with-services.sh scripts/sqlx-prepare.sh --check

# Partition physics benchmark; N=15000 takes a while. Results go to BENCHMARKS.md by hand.
N ?= 1000
bench-partitions:
	cargo build --release -p genesis-cli
	GENESIS_PG_DURABLE=1 scripts/with-services.sh bash -c 'GENESIS_DATABASE__URL=$$DATABASE_URL target/release/genesis bench partitions --count $(N)'

ci:
	bash .ci/run
