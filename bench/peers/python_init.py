"""The Python peer of the init benchmark: what a boto3 Lambda of this gateway would do
before its first request, then the Runtime API's `next` (whose arrival is the end of
init, as for the Rust functions).

Same settings and the same init as the functions (TABLE_NAME, CABITAL_SECRET_ID,
CABITAL_BASE_URL, AWS_ENDPOINT_URL, region and credentials from the environment): two
boto3 clients, the secret fetched and parsed, DynamoDB warmed by a GetItem of a key no
record uses and Cabital by a HEAD of its base URL (one after the other, as Python code
would usually do them; the Rust functions do the three together).
Run by bench-runner; it is killed while waiting for an invocation.
"""

import json
import os
import urllib.request

import boto3

TABLE_NAME = os.environ["TABLE_NAME"]
SECRET_ID = os.environ["CABITAL_SECRET_ID"]
BASE_URL = os.environ.get("CABITAL_BASE_URL", "https://caas.cabital.com")

dynamodb = boto3.client("dynamodb")
secrets = boto3.client("secretsmanager")
secret = json.loads(secrets.get_secret_value(SecretId=SECRET_ID)["SecretString"])
if not secret.get("apiKey") or not secret.get("apiSecret"):
    raise SystemExit("the secret has no apiKey/apiSecret")
try:
    dynamodb.get_item(TableName=TABLE_NAME, Key={"pk": {"S": "WARM-UP"}, "sk": {"S": "WARM-UP"}})
except Exception:  # a warm-up: its failure leaves the first request to connect
    pass
try:
    urllib.request.urlopen(urllib.request.Request(BASE_URL, method="HEAD"), timeout=1).close()
except Exception:  # any answer (a 404 is one) or none
    pass

NEXT = "http://{}/2018-06-01/runtime/invocation/next".format(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    with urllib.request.urlopen(NEXT) as invocation:
        request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"]
        invocation.read()
    done = "http://{}/2018-06-01/runtime/invocation/{}/response".format(
        os.environ["AWS_LAMBDA_RUNTIME_API"], request_id
    )
    urllib.request.urlopen(urllib.request.Request(done, data=b"{}", method="POST")).read()
