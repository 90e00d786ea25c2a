/* SPDX-License-Identifier: Apache-2.0
 *
 * The S3 ListObjectsV2 reader: a real page (namespace, entities, sizes, continuation token), pages appended
 * into one listing, <Error> documents, and malformed input refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "connectors/s3_list.h"

static const char PAGE1[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>t/</Prefix>"
    "<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
    "<Contents><Key>t/year=2024/a.parquet</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
    "<ETag>&quot;abc&quot;</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents>\n  <Key>t/b &amp; c&#x2F;&#233;.csv</Key>\n  <Size>0</Size>\n</Contents>"
    "<NextContinuationToken>tok/en+=</NextContinuationToken></ListBucketResult>";

static const char PAGE2[] =
    "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key><![CDATA[t/<x>.json]]></Key></Contents>"
    "<!-- a comment --><Contents><Size>5</Size></Contents></ListBucketResult>";

static void test_pages(void **state) {
  (void)state;
  sp_s3_listing l = {0};
  sp_error err = {0};
  assert_int_equal(sp__s3_list_parse(PAGE1, strlen(PAGE1), &l, &err), SP_OK);
  assert_int_equal(l.n, 2);
  assert_string_equal(l.objects[0].key, "t/year=2024/a.parquet");
  assert_int_equal(l.objects[0].size, 1234);
  assert_string_equal(l.objects[0].etag, "\"abc\"");
  assert_null(l.objects[1].etag);
  assert_string_equal(l.objects[1].key, "t/b & c/\xc3\xa9.csv");
  assert_int_equal(l.objects[1].size, 0);
  assert_true(l.truncated);
  assert_string_equal(l.next_token, "tok/en+=");
  assert_int_equal(sp__s3_list_parse(PAGE2, strlen(PAGE2), &l, &err), SP_OK);
  assert_int_equal(l.n, 3); /* the Contents without a Key names nothing */
  assert_string_equal(l.objects[2].key, "t/<x>.json");
  assert_int_equal(l.objects[2].size, -1);
  assert_false(l.truncated);
  assert_null(l.next_token);
  assert_null(l.error_code);
  sp__s3_listing_free(&l);
}

static void test_error_document(void **state) {
  (void)state;
  static const char doc[] = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket "
                            "does not exist</Message><BucketName>nope</BucketName></Error>";
  sp_s3_listing l = {0};
  assert_int_equal(sp__s3_list_parse(doc, strlen(doc), &l, NULL), SP_OK);
  assert_string_equal(l.error_code, "NoSuchBucket");
  assert_string_equal(l.error_message, "The specified bucket does not exist");
  assert_int_equal(l.n, 0);
  sp__s3_listing_free(&l);
}

static void test_malformed(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "not xml",
      "<Other/>",
      "<ListBucketResult><Contents><Key>a</Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Key>a</Key>",
      "<ListBucketResult><Contents><Key>&bogus;</Key></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Key>&#0;</Key></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Key>&#xD800;</Key></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Size>-4</Size></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Size>12x</Size></Contents></ListBucketResult>",
      "<ListBucketResult></ListBucketResult><ListBucketResult></ListBucketResult>",
      "<ListBucketResult><Key attr=\"x></ListBucketResult>",
      "<ListBucketResult><!-- open",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sp_s3_listing l = {0};
    sp_error err = {0};
    if (sp__s3_list_parse(bad[i], strlen(bad[i]), &l, &err) == SP_OK) fail_msg("accepted: %s", bad[i]);
    assert_int_equal(err.code, SP_EIO);
    assert_non_null(strstr(err.msg, "malformed S3 listing"));
    sp__s3_listing_free(&l);
  }
  /* Nesting beyond the limit is refused, not followed. */
  char deep[2048] = "<ListBucketResult>";
  for (int i = 0; i < 40; i++) strcat(deep, "<a>");
  sp_s3_listing l = {0};
  assert_int_equal(sp__s3_list_parse(deep, strlen(deep), &l, NULL), SP_EIO);
  sp__s3_listing_free(&l);
}

/* The input need not be terminated: a page cut anywhere is refused without reading past its end. */
static void test_truncated_everywhere(void **state) {
  (void)state;
  for (size_t n = 0; n < strlen(PAGE1); n++) {
    sp_s3_listing l = {0};
    assert_int_not_equal(sp__s3_list_parse(PAGE1, n, &l, NULL), SP_OK);
    sp__s3_listing_free(&l);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pages),
      cmocka_unit_test(test_error_document),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_truncated_everywhere),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
