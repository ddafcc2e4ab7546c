# Meterline: one image for every role (api, sink, worker, all, migrate); the command picks the role.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so source edits do not invalidate the npm layer. tsx is a runtime dependency:
# the TypeScript sources run as they are, with no build step.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY bin/ ./bin/
COPY src/ ./src/
COPY jobs/ ./jobs/

# The image's own `node` user (uid 1000); the app writes nothing outside /tmp.
USER node

EXPOSE 8080

# Slim images have no curl; Node 20's fetch does the probe. Every long-running role serves /healthz on
# PORT; docker-compose.yml disables the check for the one-shot migrate service.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "bin/meterline.mjs"]
CMD ["all"]
