# The FinOps Center service. Build: docker build -t finops-center .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p finops -p finops-replay

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/finops /src/target/release/finops-replay /usr/local/bin/
ENV FINOPS_LISTEN=0.0.0.0:50051 \
    FINOPS_STORE=sqlite:///var/lib/finops/finops.db
VOLUME /var/lib/finops
EXPOSE 50051
ENTRYPOINT ["finops"]
CMD ["serve"]
