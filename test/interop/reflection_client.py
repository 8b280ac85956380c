#!/usr/bin/python3
"""A strict, non-Node reflection client: Python grpcio + the protobuf runtime's DescriptorPool.

Usage: reflection_client.py HOST:PORT [v1alpha|v1 ...]

For each reflection version it makes a raw ServerReflectionInfo exchange with grpc's generic
stream-stream call (request and response bytes encoded and decoded by hand, so no generated
reflection stubs are needed), lists the services, then for every listed service asks
file_containing_symbol and follows every import with file_by_filename, as grpcurl does. Every
FileDescriptorProto received is added to a fresh google.protobuf.descriptor_pool.DescriptorPool,
which refuses a file whose imports or type references it cannot resolve. Finally it looks up
gateway.v1.JoinQueueResponse and checks what a real client relies on.

Prints one JSON object on stdout; exits 0 when every check passed, 1 otherwise.
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

# ServerReflectionRequest fields (identical numbers in v1 and v1alpha).
REQ_HOST = 1
REQ_FILE_BY_FILENAME = 3
REQ_FILE_CONTAINING_SYMBOL = 4
REQ_LIST_SERVICES = 7
# ServerReflectionResponse fields.
RES_FILE_DESCRIPTOR_RESPONSE = 4
RES_LIST_SERVICES_RESPONSE = 6
RES_ERROR_RESPONSE = 7

MAX_ROUNDS = 50


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string_field(number, text):
    data = text.encode("utf-8")
    return varint((number << 3) | 2) + varint(len(data)) + data


def request(kind, value):
    return string_field(REQ_HOST, "") + string_field(kind, value)


def read_varint(data, pos):
    result = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(data):
    """Decodes one message level: a list of (number, wire_type, value)."""
    out = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = read_varint(data, pos)
        elif wire_type == 2:
            length, pos = read_varint(data, pos)
            value = bytes(data[pos:pos + length])
            pos += length
        elif wire_type == 1:
            value = bytes(data[pos:pos + 8])
            pos += 8
        elif wire_type == 5:
            value = bytes(data[pos:pos + 4])
            pos += 4
        else:
            raise ValueError("unsupported wire type %d" % wire_type)
        out.append((number, wire_type, value))
    return out


def first(items, number):
    for item_number, _, value in items:
        if item_number == number:
            return value
    return None


class ReflectionError(Exception):
    pass


def exchange(channel, version, requests):
    """One ServerReflectionInfo stream: all requests sent, all responses decoded."""
    method = "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version
    call = channel.stream_stream(method, request_serializer=None, response_deserializer=None)
    answers = []
    for raw in call(iter(requests), timeout=10):
        top = fields(raw)
        error = first(top, RES_ERROR_RESPONSE)
        if error is not None:
            parts = fields(error)
            answers.append({"error_code": first(parts, 1) or 0, "error_message": (first(parts, 2) or b"").decode()})
            continue
        listed = first(top, RES_LIST_SERVICES_RESPONSE)
        if listed is not None:
            names = [first(fields(service), 1).decode() for number, _, service in fields(listed) if number == 1]
            answers.append({"services": names})
            continue
        files = first(top, RES_FILE_DESCRIPTOR_RESPONSE)
        if files is not None:
            answers.append({"files": [value for number, _, value in fields(files) if number == 1]})
            continue
        answers.append({"unexpected": sorted({number for number, _, _ in top})})
    return answers


def check_version(address, version):
    report = {"version": version, "ok": False}
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        listed = exchange(channel, version, [request(REQ_LIST_SERVICES, "*")])[0]
        if "services" not in listed:
            raise ReflectionError("list_services failed: %r" % listed)
        services = listed["services"]
        report["services"] = services

        received = {}  # file name -> FileDescriptorProto
        wanted = [("symbol", name) for name in services]
        rounds = 0
        while wanted and rounds < MAX_ROUNDS:
            rounds += 1
            requests = [request(REQ_FILE_CONTAINING_SYMBOL if kind == "symbol" else REQ_FILE_BY_FILENAME, value) for kind, value in wanted]
            answers = exchange(channel, version, requests)
            if len(answers) != len(requests):
                raise ReflectionError("%d requests got %d answers" % (len(requests), len(answers)))
            for (kind, value), answer in zip(wanted, answers):
                if "files" not in answer:
                    raise ReflectionError("%s %s: %r" % (kind, value, answer))
                for raw in answer["files"]:
                    proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
                    received.setdefault(proto.name, proto)
            missing = sorted({dep for proto in received.values() for dep in proto.dependency if dep not in received})
            wanted = [("file", name) for name in missing]
        if wanted:
            raise ReflectionError("imports still unresolved after %d rounds: %r" % (MAX_ROUNDS, wanted))
        report["files"] = sorted(received)
        report["rounds"] = rounds

        # A fresh pool (not the default one, which already knows the well-known types): every file
        # must come from the server, and Add() refuses unresolvable imports and references.
        pool = descriptor_pool.DescriptorPool()
        added = set()

        def add(name, depth=0):
            if name in added:
                return
            if depth > len(received):
                raise ReflectionError("import cycle at %s" % name)
            proto = received[name]
            for dep in proto.dependency:
                add(dep, depth + 1)
            pool.Add(proto)
            added.add(name)

        for name in sorted(received):
            add(name)
        for name in services:
            pool.FindServiceByName(name)

        response = pool.FindMessageTypeByName("gateway.v1.JoinQueueResponse")
        expires_at = response.fields_by_name["expires_at"]
        metadata = pool.FindMessageTypeByName("gateway.v1.QueueMetadata")
        headers = metadata.fields_by_name["headers"]
        queue_file = pool.FindFileByName("proto/gateway/v1/queue.proto")
        report["join_queue_response"] = {
            "file": response.file.name,
            "expires_at_type": expires_at.message_type.full_name,
            "error_type": response.fields_by_name["error"].message_type.full_name,
        }
        report["headers_entry"] = {
            "name": headers.message_type.name,
            "map_entry": headers.message_type.GetOptions().map_entry,
        }
        report["queue_file_dependencies"] = [dep.name for dep in queue_file.dependencies]
        report["queue_methods"] = [method.name for method in pool.FindServiceByName("gateway.v1.QueueService").methods]
        unknown = exchange(channel, version, [request(REQ_FILE_CONTAINING_SYMBOL, "gateway.v1.NoSuchService")])[0]
        report["unknown_symbol_error_code"] = unknown.get("error_code")
        report["ok"] = True
    return report


def main(argv):
    if len(argv) < 2:
        print("usage: reflection_client.py HOST:PORT [v1alpha|v1 ...]", file=sys.stderr)
        return 2
    address = argv[1]
    versions = argv[2:] or ["v1alpha", "v1"]
    reports = []
    ok = True
    for version in versions:
        try:
            reports.append(check_version(address, version))
        except Exception as error:  # report every failure as data, with its type
            ok = False
            reports.append({"version": version, "ok": False, "error": "%s: %s" % (type(error).__name__, error)})
    print(json.dumps({"ok": ok, "grpcio": grpc.__version__, "reports": reports}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
