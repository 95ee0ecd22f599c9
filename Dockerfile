# Parley in a container: a build stage with the Rust toolchain, then a slim
# runtime stage with only the binary, run as an unprivileged user.
#
#   docker build -t parley .
#   docker run -p 8000:8000 -v parley-data:/var/lib/parley/data parley
#
# With nothing configured it stores data in SQLite in the volume and answers
# chat with the built-in offline assistant; compose.yaml runs it on
# PostgreSQL and Redis instead. Every setting is listed in .env.example.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The README's release build, with the `dist` profile (fat LTO).
RUN cargo build --profile dist -p parley-server --locked

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/parley --create-home parley \
    && install -d -o parley -g parley -m 0700 /var/lib/parley/data
COPY --from=build /src/target/dist/parley /usr/local/bin/parley
USER parley
WORKDIR /var/lib/parley
ENV HOST=0.0.0.0 \
    PORT=8000 \
    DATABASE_URL=sqlite://data/parley.db \
    ENVIRONMENT=production
VOLUME ["/var/lib/parley/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health/live || exit 1
ENTRYPOINT ["parley"]
CMD ["serve"]
