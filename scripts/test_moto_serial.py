"""Tests of scripts/moto_serial.py's patches against the pinned moto (scripts/requirements.txt).

Run: .venv/bin/python -m unittest discover -s scripts -p 'test_moto_serial.py'
(scripts/test.sh does). A failure here after a moto bump means the internals a patch
replaces have moved: read the patch again before bumping.
"""

import os
import tempfile
import threading
import time
import unittest

import boto3
import moto.server
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult

import moto_serial


class OneRequestAtATime(unittest.TestCase):
    def test_moto_server_starts_through_the_patched_run_simple(self):
        # moto's main() looks run_simple up in its module at call time: the patch lands.
        self.assertIn("run_simple", moto.server.main.__code__.co_names)
        self.assertIs(moto.server.run_simple, moto_serial._serial_run_simple)

    def test_requests_never_overlap(self):
        running, most = [0], [0]
        guard = threading.Lock()

        def app(environ, start_response):
            with guard:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.02)
            with guard:
                running[0] -= 1
            yield b"ok"

        serial = moto_serial._OneAtATime(app)
        threads = [threading.Thread(target=serial, args=({}, None)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(most[0], 1)


@mock_aws
class DynamoDBPatches(unittest.TestCase):
    def setUp(self):
        self.client = boto3.client("dynamodb", region_name="us-east-1")
        self.client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )

    def put(self, pk, sk, **attrs):
        item = {"pk": {"S": pk}, "sk": {"S": sk}, **{k: {"S": v} for k, v in attrs.items()}}
        self.client.put_item(TableName="t", Item=item)

    def test_patches_are_in_place(self):
        self.assertIs(DynamoDBBackend.transact_write_items, moto_serial._transact_write_items)
        self.assertIs(Table.query, moto_serial._query)
        self.assertIs(DynamoResult.execute_result, moto_serial._execute_result)

    def test_a_cancelled_transaction_puts_back_only_its_own_items(self):
        self.put("a", "1", v="before")
        self.put("other", "1", v="kept")
        with self.assertRaises(self.client.exceptions.TransactionCanceledException):
            self.client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}, "sk": {"S": "1"}}}},
                    {
                        "Update": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                            "UpdateExpression": "SET v = :v",
                            "ExpressionAttributeValues": {":v": {"S": "after"}},
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "other"}, "sk": {"S": "1"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        items = self.client.scan(TableName="t")["Items"]
        found = sorted((i["pk"]["S"], i.get("v", {}).get("S")) for i in items)
        self.assertEqual(found, [("a", "before"), ("other", "kept")])

    def stream_records(self):
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        arn = self.client.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
        return [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records]

    def test_a_cancelled_transaction_leaves_no_stream_record(self):
        self.put("a", "1", v="before")
        new = {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}, "sk": {"S": "1"}}}}
        refused = {
            "ConditionCheck": {
                "TableName": "t",
                "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        with self.assertRaises(self.client.exceptions.TransactionCanceledException):
            self.client.transact_write_items(TransactItems=[new, refused])
        self.assertEqual(self.stream_records(), [("INSERT", "a")])
        # A transaction that commits writes its records.
        self.client.transact_write_items(TransactItems=[new])
        self.assertEqual(self.stream_records(), [("INSERT", "a"), ("INSERT", "new")])

    def test_queries_answer_as_moto_does(self):
        for pk in ("a", "b"):
            for sk in ("3", "1", "2"):
                self.put(pk, sk, g=f"g-{sk}" if sk != "2" else "g-1")
        self.put("c", "1")  # not in the index: no g
        table = self.client.query(
            TableName="t",
            KeyConditionExpression="pk = :p AND sk > :s",
            ExpressionAttributeValues={":p": {"S": "a"}, ":s": {"S": "1"}},
        )["Items"]
        self.assertEqual([i["sk"]["S"] for i in table], ["2", "3"])
        index = self.client.query(
            TableName="t",
            IndexName="by-g",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "g-1"}},
            ScanIndexForward=False,
        )["Items"]
        self.assertEqual([(i["pk"]["S"], i["sk"]["S"]) for i in index], [("b", "2"), ("a", "2"), ("b", "1"), ("a", "1")])
        self.assertEqual(self.client.query(
            TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "none"}}
        )["Items"], [])

    def test_answers_written_directly_equal_motos(self):
        with tempfile.TemporaryDirectory() as folder:
            log = os.path.join(folder, "verify.log")
            moto_serial._VERIFY = log
            try:
                self.put("a", "1", g="x")
                self.client.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "1"}})
                self.client.query(
                    TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}}
                )
            finally:
                moto_serial._VERIFY = None
            with open(log, encoding="utf-8") as f:
                lines = f.read().splitlines()
        self.assertIn("checked Query", lines)
        self.assertEqual([line for line in lines if "differs" in line], [])


if __name__ == "__main__":
    unittest.main()
