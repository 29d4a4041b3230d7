# Thaw worker image: `docker build -t thaw:local .` then `docker run thaw:local run item --kafka ...`.
FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

# Sources are needed before `npm ci`: its `prepare` script compiles them.
# (npm ci deletes any node_modules copied from the build context first.)
COPY . .
RUN npm ci --include=dev \
 && npm run build \
 && npm prune --omit=dev \
 && npm cache clean --force

USER node
ENTRYPOINT ["node", "bin/thaw.mjs"]
CMD ["--help"]
