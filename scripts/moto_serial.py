"""moto's server with the patches our tests need; the same flags as moto_server.

    python moto_serial.py -H 127.0.0.1 -p PORT

Each patch replaces one moto internal of the version pinned in scripts/requirements.txt;
`_check_moto` stops the server at start if one has moved, and scripts/test_moto_serial.py
checks what each does. The three speed patches are needed too: without them the CI chaos
run's table (about 2,000 items) costs moto 250 ms per transaction and 60-110 ms per
query, and the run fails (API calls queue behind moto past their 180 s).
"""

import copy
import inspect
import json
import os
import threading

import moto.dynamodb.models as _dynamodb_models
from moto import server
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult

_TURN = threading.Lock()


def _check_moto():
    """Fails loudly at start when an internal patched below is not where it was."""
    problems = []
    if "run_simple" not in server.main.__code__.co_names:
        problems.append("moto.server.main no longer calls run_simple")
    if getattr(_dynamodb_models, "copy", None) is not copy:
        problems.append("moto.dynamodb.models no longer imports copy")
    query_args = list(inspect.signature(Table.query).parameters)
    if query_args[8:9] != ["index_name"]:  # read as args[6] by _query
        problems.append(f"Table.query's arguments moved: {query_args[:9]}")
    if not callable(getattr(Table, "all_items", None)):
        problems.append("Table.all_items is gone")
    for owner, name in ((DynamoDBBackend, "transact_write_items"), (DynamoResult, "execute_result")):
        if not callable(getattr(owner, name, None)):
            problems.append(f"{owner.__name__}.{name} is gone")
    if problems:
        raise SystemExit("moto_serial.py: moto's internals moved (" + "; ".join(problems) + "): see scripts/requirements.txt")


_check_moto()


# Correctness: DynamoDB applies each request atomically, moto's threaded server does not
# (a cancelled transaction restores a whole-table copy over other requests' writes).
# One request at a time, connections still independent.
class _OneAtATime:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        with _TURN:
            # Drain the response inside the lock: the work is done by then.
            return list(self.app(environ, start_response))


_run_simple = server.run_simple


def _serial_run_simple(host, port, app, **kwargs):
    return _run_simple(host, port, _OneAtATime(app), **kwargs)


server.run_simple = _serial_run_simple


# Speed: moto deep-copies every table a transaction names, to restore it on cancel (250 ms
# a transaction at 2,000 items). Its own items are saved instead and put back on failure:
# the same outcome, as a transaction writes only the items it names.
class _TableCopySkipped:
    """`copy` as moto's DynamoDB backend sees it: inside `transact_write_items` a Table
    is not copied (its items are saved by `_transact_write_items` instead); anything
    else, and anywhere else, as usual."""

    in_transaction = False
    copy = staticmethod(copy.copy)

    @staticmethod
    def deepcopy(value, memo=None):
        if _TableCopySkipped.in_transaction and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


_dynamodb_models.copy = _TableCopySkipped
_moto_transact_write_items = DynamoDBBackend.transact_write_items


def _item_key(backend, entry):
    """(table, hash, range) of one transaction entry, or None when moto itself will
    refuse the entry (unknown table, missing key): nothing of it is written then."""
    try:
        op_type, op = next(iter(entry.items()))
        table = backend.tables[op["TableName"]]
        key = op["Item"] if op_type == "Put" else op["Key"]
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        return table, hash_value, range_value
    except (KeyError, TypeError, AttributeError, StopIteration):
        return None


def _put_back(table, hash_value, range_value, saved):
    if range_value is not None:
        if saved is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = saved
    elif saved is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = saved


def _stream_lengths(backend, transact_items):
    """Each named table's stream shard and its length before the transaction."""
    shards = {}
    for entry in transact_items if isinstance(transact_items, list) else []:
        try:
            _, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
        except (KeyError, TypeError, AttributeError, StopIteration):
            continue
        shard = getattr(table, "stream_shard", None)
        if shard is not None:
            shards[id(shard)] = (shard, len(shard.items))
    return list(shards.values())


def _transact_write_items(self, transact_items):
    # Correctness too: moto writes a stream record per entry as it goes, and its own
    # restore (the table copy skipped above) would have dropped them with the table.
    # A cancelled transaction leaves no record on DynamoDB's stream, so none here.
    streams = _stream_lengths(self, transact_items)
    saved = []
    for entry in transact_items if isinstance(transact_items, list) else []:
        key = _item_key(self, entry)
        if key is None:
            continue
        table, hash_value, range_value = key
        try:
            before = table.get_item(hash_value, range_value)
        except Exception:  # moto refuses the key: nothing of it is written
            continue
        saved.append((table, hash_value, range_value, copy.deepcopy(before)))
    _TableCopySkipped.in_transaction = True
    try:
        return _moto_transact_write_items(self, transact_items)
    except BaseException:
        for table, hash_value, range_value, item in reversed(saved):
            _put_back(table, hash_value, range_value, item)
        for shard, length in streams:
            del shard.items[length:]
        raise
    finally:
        _TableCopySkipped.in_transaction = False


DynamoDBBackend.transact_write_items = _transact_write_items

# Speed: moto sorts every item of the table for each query. A query is handed only the
# items it can match (the partition, or the index's hash value), which moto then sorts by
# the same total order: the same answer.
_moto_query = Table.query


def _query(self, hash_key, *args, **kwargs):
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name:
        if self.range_key_attr:
            candidates = [item for partition in self.items.values() for item in partition.values()]
        else:
            candidates = list(self.items.values())
        # Only items with the index's hash key attributes are in the index.
        index = next((i for i in self.all_indexes() if i.name == index_name), None)
        if index is not None:
            hash_attrs = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
            if len(hash_attrs) == 1 and hash_key is not None:
                # One hash attribute: only the items with the queried value can match.
                attr = hash_attrs[0]
                candidates = [item for item in candidates if attr in item.attrs and item.attrs[attr] == hash_key]
            else:
                candidates = [item for item in candidates if all(a in item.attrs for a in hash_attrs)]
    else:
        partition = self.items.get(hash_key)
        if partition is None:
            candidates = []
        elif self.range_key_attr:
            candidates = list(partition.values())
        else:
            candidates = [partition]
    # Seen by this call only: requests run one at a time (_OneAtATime).
    self.all_items = lambda: candidates
    try:
        return _moto_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


Table.query = _query

# Speed: moto writes each answer through its model-driven serializer, about 0.5 ms per
# item returned. DynamoDB's answers are already in wire format: json.dumps writes the same
# document (anything else goes through moto's). MOTO_SERIAL_VERIFY=FILE computes both and
# logs any difference to FILE (scripts/test_moto_serial.py uses it).
_FAST_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
_VERIFY = os.environ.get("MOTO_SERIAL_VERIFY")
_moto_execute_result = DynamoResult.execute_result


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _execute_result(self, context):
    operation = context.operation_model
    if operation.name not in _FAST_OPERATIONS or operation.service_model.protocol != "json":
        return _moto_execute_result(self, context)
    try:
        body = json.dumps(_without_none(self.result), separators=(",", ":"))
    except (TypeError, ValueError):
        return _moto_execute_result(self, context)
    version = operation.service_model.metadata.get("jsonVersion", "1.0")
    fast = (200, {"Content-Type": f"application/x-amz-json-{version}"}, body)
    if _VERIFY:
        with open(_VERIFY, "a", encoding="utf-8") as log:
            log.write(f"checked {operation.name}\n")
        slow = _moto_execute_result(self, context)
        if (slow[0], slow[1].get("Content-Type"), json.loads(slow[2] or "{}")) != (
            fast[0],
            fast[1]["Content-Type"],
            json.loads(fast[2]),
        ):
            with open(_VERIFY, "a", encoding="utf-8") as log:
                log.write(f"fast answer differs for {operation.name}: {slow!r} != {fast!r}\n")
            return slow
    return fast


DynamoResult.execute_result = _execute_result

if __name__ == "__main__":
    server.main()
