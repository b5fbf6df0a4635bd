#!/bin/sh
# The one-shot setup of docker-compose.yml, run in the pipeline image before
# the services start: apply the SQL migrations, create the Kafka topics and
# the S3 backup bucket. Every part is idempotent, so `docker compose up`
# can run it again on each start.
set -eu

pipeline-admin migrate
pipeline-admin create-topics

if [ -n "${S3_ENDPOINT:-}" ]; then
  # PUT Bucket signed with SigV4; 409 means the bucket is already there.
  code=$(curl -s -o /tmp/create-bucket.xml -w '%{http_code}' -X PUT \
    --aws-sigv4 "aws:amz:${S3_REGION:-us-east-1}:s3" \
    --user "${S3_ACCESS_KEY}:${S3_SECRET_KEY}" \
    "${S3_ENDPOINT%/}/${S3_BUCKET:-transit-backups}") || true
  case "$code" in
    200|409) echo "setup: S3 bucket ${S3_BUCKET:-transit-backups} is ready" ;;
    000) echo "setup: S3_ENDPOINT: cannot connect to $S3_ENDPOINT" >&2
         exit 1 ;;
    *) echo "setup: S3_ENDPOINT: creating bucket ${S3_BUCKET:-transit-backups} failed (HTTP $code):" >&2
       cat /tmp/create-bucket.xml >&2
       exit 1 ;;
  esac
fi
echo "setup: done"
