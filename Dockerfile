# One multi-stage build for both services:
#   docker build --target auth-service -t auth-service .
#   docker build --target resource-service -t resource-service .

# ---- build: dependencies first (cached until a manifest or Cargo.lock changes) ----
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY shared-claims/Cargo.toml shared-claims/
COPY auth-service/Cargo.toml auth-service/
COPY resource-service/Cargo.toml resource-service/
COPY client-cli/Cargo.toml client-cli/
COPY bench/Cargo.toml bench/
RUN for crate in shared-claims auth-service resource-service client-cli bench; do \
        mkdir -p "$crate/src" && echo 'fn main() {}' > "$crate/src/main.rs" && touch "$crate/src/lib.rs"; \
    done \
 && cargo build --release --locked -p auth-service -p resource-service \
 && rm -rf shared-claims/src auth-service/src resource-service/src client-cli/src bench/src

# ---- build: our sources ----
COPY . .
RUN find shared-claims auth-service resource-service -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p auth-service -p resource-service

# ---- runtime base: slim Debian, CA certificates, an unprivileged user; no compiler, no sources ----
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app
WORKDIR /app

# ---- auth-service ----
FROM runtime AS auth-service
COPY --from=build /src/target/release/auth-service /usr/local/bin/auth-service
COPY auth-service/config /app/config
# The key directory; a named volume mounted here inherits this ownership.
RUN mkdir -p /app/keys && chown app:app /app/keys && chmod 700 /app/keys
USER app
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 CMD ["auth-service", "healthcheck"]
CMD ["auth-service"]

# ---- resource-service ----
FROM runtime AS resource-service
COPY --from=build /src/target/release/resource-service /usr/local/bin/resource-service
COPY resource-service/config /app/config
USER app
EXPOSE 8081
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=5 CMD ["resource-service", "healthcheck"]
CMD ["resource-service"]
