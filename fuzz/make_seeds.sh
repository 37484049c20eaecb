#!/usr/bin/env bash
# Writes the fuzz targets' seed corpora into OUT/<target>/ from valid messages and files: everything but
# the S3 XML is made by aitw_fuzz_seeds (fuzz/make_seeds.cpp) with the project's own APIs — encoded
# Envelopes, synthetic ONNX detectors, a real `registry push` of ../shared/models/yolo11n.onnx,
# RecordingWriter files, JPEGs from ../shared/datasets/images — and the XML listings are written here.
# Nothing it writes is committed. Usage: fuzz/make_seeds.sh OUT [BUILD_DIR (default build-fuzz)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: fuzz/make_seeds.sh OUT [BUILD_DIR]}
build=${2:-$root/build-fuzz}
shared=${AITW_SHARED_DIR:-$root/../shared}
gen="$build/fuzz/aitw_fuzz_seeds"
[ -x "$gen" ] || { echo "make_seeds: $gen is not built (cmake --build $build --target aitw_fuzz_seeds)" >&2; exit 1; }
# The generator is built with the fuzz flags (ASan); its process-lifetime allocations are not the point.
ASAN_OPTIONS=detect_leaks=0 "$gen" "$out" "$shared"

# fuzz_registry reads every input both as a manifest and as an S3 answer: ListObjectsV2 pages and error
# bodies in the shapes MinIO, s3rver and AWS send.
x="$out/fuzz_registry"
mkdir -p "$x"
cat >"$x/s3_list_first_page.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>models</Name><Prefix>edge/models/</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken><Contents><Key>edge/models/yolo11n/1.json</Key><LastModified>2026-11-01T10:00:00.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>1895</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>edge/models/yolo11n/latest</Key><Size>1</Size></Contents><Contents><Key>edge/models/a&amp;b/1.json</Key><Size>10</Size></Contents></ListBucketResult>
EOF
cat >"$x/s3_list_last_page.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>models</Name>
  <Prefix>with space+plus/</Prefix>
  <ContinuationToken>abc</ContinuationToken>
  <KeyCount>2</KeyCount>
  <IsTruncated>false</IsTruncated>
  <Contents>
    <Key>with space+plus/blobs/sha256/&#x37;206.onnx</Key>
    <Size>10867374</Size>
  </Contents>
  <Contents>
    <Key>with space+plus/models/caf&#233;/2.json</Key>
  </Contents>
</ListBucketResult>
EOF
cat >"$x/s3_list_empty.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>models</Name><Prefix>none/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>
EOF
cat >"$x/s3_error_no_such_bucket.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>models</BucketName><RequestId>4442587FB7D0A2F9</RequestId></Error>
EOF
cat >"$x/s3_error_access_denied.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records &lt;minio&gt;.</Message></Error>
EOF
printf '%s' '<ListBucketResult><Contents><Key>unterminated' >"$x/s3_list_unterminated.xml"
echo "make_seeds: S3 XML seeds in $x"
