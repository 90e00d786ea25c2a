/* SPDX-License-Identifier: Apache-2.0
 *
 * Field ids and enum values of the Arrow IPC flatbuffers (apache/arrow format/Schema.fbs, format/Message.fbs),
 * shared by ipc_write.c and ipc_read.c. A union field takes two ids: its type (ubyte) and its value.
 */
#ifndef SPICE_ARROW_IPC_FORMAT_H
#define SPICE_ARROW_IPC_FORMAT_H

#include <stdint.h>

/* table Message */
enum { MSG_VERSION = 0, MSG_HEADER_TYPE = 1, MSG_HEADER = 2, MSG_BODY_LENGTH = 3, MSG_CUSTOM_METADATA = 4 };
enum { METADATA_V4 = 3, METADATA_V5 = 4 };
/* table Schema */
enum { SCHEMA_ENDIANNESS = 0, SCHEMA_FIELDS = 1, SCHEMA_CUSTOM_METADATA = 2, SCHEMA_FEATURES = 3 };
/* table Field */
enum { FIELD_NAME = 0, FIELD_NULLABLE = 1, FIELD_TYPE_TYPE = 2, FIELD_TYPE = 3, FIELD_DICTIONARY = 4,
       FIELD_CHILDREN = 5, FIELD_CUSTOM_METADATA = 6 };
/* table KeyValue */
enum { KV_KEY = 0, KV_VALUE = 1 };
/* table DictionaryEncoding */
enum { DICT_ID = 0, DICT_INDEX_TYPE = 1, DICT_ORDERED = 2, DICT_KIND = 3 };
/* table RecordBatch */
enum { RB_LENGTH = 0, RB_NODES = 1, RB_BUFFERS = 2, RB_COMPRESSION = 3, RB_VARIADIC = 4 };
/* table DictionaryBatch */
enum { DB_ID = 0, DB_DATA = 1, DB_IS_DELTA = 2 };

/* union Type */
enum {
  T_NONE = 0, T_NULL, T_INT, T_FLOAT, T_BINARY, T_UTF8, T_BOOL, T_DECIMAL, T_DATE, T_TIME, T_TIMESTAMP,
  T_INTERVAL, T_LIST, T_STRUCT, T_UNION, T_FIXED_BINARY, T_FIXED_LIST, T_MAP, T_DURATION, T_LARGE_BINARY,
  T_LARGE_UTF8, T_LARGE_LIST, T_RUN_END, T_BINARY_VIEW, T_UTF8_VIEW, T_LIST_VIEW, T_LARGE_LIST_VIEW
};
/* union MessageHeader */
enum { H_NONE = 0, H_SCHEMA = 1, H_DICTIONARY = 2, H_RECORD_BATCH = 3 };

/* Type tables: field ids */
enum { INT_BITWIDTH = 0, INT_SIGNED = 1 };
enum { FLOAT_PRECISION = 0 };                 /* HALF = 0, SINGLE = 1, DOUBLE = 2 */
enum { DEC_PRECISION = 0, DEC_SCALE = 1, DEC_BITWIDTH = 2 };
enum { DATE_UNIT = 0 };                       /* DAY = 0, MILLISECOND = 1 (default) */
enum { TIME_UNIT = 0, TIME_BITWIDTH = 1 };    /* TimeUnit: SECOND = 0 .. NANOSECOND = 3 */
enum { TS_UNIT = 0, TS_TIMEZONE = 1 };
enum { INTERVAL_UNIT = 0 };                   /* YEAR_MONTH = 0, DAY_TIME = 1, MONTH_DAY_NANO = 2 */
enum { DURATION_UNIT = 0 };
enum { FSB_WIDTH = 0 };
enum { FSL_SIZE = 0 };
enum { MAP_KEYS_SORTED = 0 };

/* struct FieldNode { long length; long null_count; } and struct Buffer { long offset; long length; } */
typedef struct ipc_pair {
  int64_t a, b;
} ipc_pair;

#endif
