import {ScalarType, type JsonValue} from '@bufbuild/protobuf';

/** A scalar's default value in proto3 JSON (64-bit integers are strings: JSON numbers lose precision past 2^53). */
export function scalarZeroJson(scalar: ScalarType): JsonValue {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return '';
    case ScalarType.BOOL:
      return false;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return '0';
    default:
      return 0;
  }
}
