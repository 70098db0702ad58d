# A Peerstack node in a container (docs/operations.md, "In a container"). Not tested here: no
# container engine runs on the project's build machines.
#
#   docker build -t peerstack .
#   docker run -p 8080:8080 -v peerstack-data:/data peerstack                       # a new network
#   docker run -p 8080:8080 -v peerstack-data:/data peerstack --join https://a.member.example
#   docker exec <container> peerstack status --data-dir /data
#
# The build stage runs the README's build (scripts/build.sh: the Debian packages it needs,
# then CMake); the node needs only glibc (PEERSTACK_PORTABLE), so the image it runs in is
# bookworm-slim with the program, the example plugins and the demo frontend.
FROM debian:bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates git sudo \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rm -rf build build-* && PEERSTACK_CMAKE_ARGS="-DBUILD_TESTING=OFF -DPEERSTACK_BUILD_BENCH=OFF" scripts/build.sh

FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/core/peerstack /usr/local/bin/peerstack
COPY --from=build /src/build/plugins/*.so /opt/peerstack/plugins/
COPY --from=build /src/front /opt/peerstack/front
VOLUME /data
EXPOSE 8080
# The admin listener stays on the container's loopback: reach it with `docker exec`.
ENTRYPOINT ["peerstack", "run", "--data-dir", "/data", "--front", "/opt/peerstack/front", \
            "--plugins", "/opt/peerstack/plugins", "--bind", "0.0.0.0", "--port", "8080"]
