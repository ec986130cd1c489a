// A boto3 session a researcher would write, run by a real Python: argv is the edge URL,
// a local file to upload (multipart above 8 MiB) and where to download it; credentials
// come from the environment. Prints one JSON report for the test to check.
export const BOTO3_SCRIPT = String.raw`
import json, sys
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

url, upload_path, download_path = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=url, region_name="auto", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.put_object(Bucket="datasets", Key="boto3/hello.txt", Body=b"hello from boto3", Metadata={"team": "robots"})
got = s3.get_object(Bucket="datasets", Key="boto3/hello.txt")
body = got["Body"].read().decode()
for i in range(7):
    s3.put_object(Bucket="datasets", Key=f"boto3/page/{i}", Body=str(i).encode())
keys, pages = [], 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="datasets", Prefix="boto3/page/", PaginationConfig={"PageSize": 3}):
    pages += 1
    keys += [o["Key"] for o in page.get("Contents", [])]
transfer = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024)
s3.upload_file(upload_path, "datasets", "boto3/big.bin", Config=transfer)
etag = s3.head_object(Bucket="datasets", Key="boto3/big.bin")["ETag"]
s3.download_file("datasets", "boto3/big.bin", download_path, Config=transfer)
presigned = s3.generate_presigned_url("get_object", Params={"Bucket": "datasets", "Key": "boto3/hello.txt"}, ExpiresIn=600)
print(json.dumps({"body": body, "metadata": got["Metadata"], "keys": keys, "pages": pages, "etag": etag, "url": presigned}))
`;
