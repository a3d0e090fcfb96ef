#!/usr/bin/env bash
# The Lambda binary's own cold start — process start, configuration, SDK clients, the KMS
# unwrap of the patient-data key, wiring — measured against the local AWS stand-in (moto).
# Lambda adds its own sandbox start and the download of the bundle on top.
#
#   cargo build --profile dist -p rxbridge-aws     # host build of both binaries
#   bench/lambda-init.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
bin=target/dist/rxbridge-lambda
tool=target/dist/rxbridge-aws
[ -x "$bin" ] && [ -x "$tool" ] || { echo "build first: cargo build --profile dist -p rxbridge-aws" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null' EXIT
endpoint="http://127.0.0.1:$port"
until curl -s -o /dev/null "$endpoint"; do sleep 0.2; done
table="rxb-init-$$"
"$tool" --table "$table" --endpoint "$endpoint" create-table >/dev/null
key=$(.venv/bin/python - "$endpoint" "$table" <<'PY'
import sys, boto3
ep, table = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=ep, region_name="eu-west-2", aws_access_key_id="local", aws_secret_access_key="local")
boto3.client("s3", **kw).create_bucket(Bucket=table, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
print(boto3.client("kms", **kw).create_key()["KeyMetadata"]["KeyId"])
PY
)
echo "binary: $(du -h "$bin" | cut -f1) ($bin)"
for i in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  out=$(RXBRIDGE_TABLE="$table" RXBRIDGE_DOCUMENTS_BUCKET="$table" RXBRIDGE_KMS_KEY_ID="$key" \
    RXBRIDGE_AWS_ENDPOINT="$endpoint" RXBRIDGE_DATA_DIR="$(mktemp -d)" \
    AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 AWS_LAMBDA_FUNCTION_NAME=bench AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_LOG_STREAM_NAME=x AWS_LAMBDA_LOG_GROUP_NAME=x \
    "$bin" 2>&1 || true)
  end=$(date +%s%N)
  init=$(printf '%s\n' "$out" | grep -o '"init_ms":[0-9]*' | head -1 | cut -d: -f2)
  echo "run $i: init ${init:-?} ms (process to ready, incl. $( [ "$i" = 1 ] && echo 'GenerateDataKey + ' )Decrypt), whole process $(( (end - start) / 1000000 )) ms"
done
