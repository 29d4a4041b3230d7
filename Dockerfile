# Thaw worker image: `docker build -t thaw:local .` then `docker run thaw:local run item --kafka ...`.
FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

# Sources are needed before `npm install`: its `prepare` script compiles them. (`npm install`, not
# `npm ci`: chdb's optional macOS binaries are not in the lock file, see README.)
COPY . .
RUN npm install --include=dev --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev \
 && npm cache clean --force

USER node
ENTRYPOINT ["node", "bin/thaw.mjs"]
CMD ["--help"]
