package integration

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	fhtypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// policyCredentials are three users with identity policies: an admin, a
// producer that may only put to streams, and a reader that may only read
// the stream "orders".
const policyCredentials = `{"users":[
 {"name":"admin","keys":[{"access_key_id":"AKIAADMIN","secret_access_key":"admin-secret"}],
  "policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}]},
 {"name":"producer","keys":[{"access_key_id":"AKIAPRODUCER","secret_access_key":"producer-secret"}],
  "policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesis:PutRecord","kinesis:PutRecords"],"Resource":"arn:aws:kinesis:*:*:stream/*"}]}]},
 {"name":"reader","keys":[{"access_key_id":"AKIAREADER","secret_access_key":"reader-secret"}],
  "policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesis:GetRecords","kinesis:GetShardIterator","kinesis:DescribeStream*","kinesis:ListShards"],"Resource":"arn:aws:kinesis:us-east-1:*:stream/orders"}]}]}]}`

// TestSignedPolicies: real SigV4 signatures against a credentials file
// whose users carry identity policies; each identity can do what its
// policy allows and gets Kinesis' AccessDeniedException for the rest.
func TestSignedPolicies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(path, []byte(policyCredentials), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, t.TempDir(), "--engine", "memory", "--transition-delay", "0s", "--credentials", path)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := func(akid, secret string) *kinesis.Client {
		return authClient(srv.endpoint(), tr, akid, secret, "", nil)
	}
	admin, producer, reader := client("AKIAADMIN", "admin-secret"), client("AKIAPRODUCER", "producer-secret"), client("AKIAREADER", "reader-secret")
	ctx := context.Background()
	for _, name := range []string{"orders", "audit"} {
		if _, err := admin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	denied := func(what string, err error, action string) {
		t.Helper()
		code, msg := apiErr(err)
		if code != "AccessDeniedException" || !strings.Contains(msg, "is not authorized to perform: kinesis:"+action) {
			t.Fatalf("%s: %s %q, want AccessDeniedException for kinesis:%s", what, code, msg, action)
		}
	}

	// The producer puts to both streams, and can do nothing else.
	for _, name := range []string{"orders", "audit"} {
		if _, err := producer.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: []byte("from the producer")}); err != nil {
			t.Fatalf("producer PutRecord to %s: %v", name, err)
		}
	}
	if _, err := producer.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("orders"), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("batch")}}}); err != nil {
		t.Fatalf("producer PutRecords: %v", err)
	}
	_, err := producer.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("orders")})
	denied("producer DeleteStream", err, "DeleteStream")
	_, err = producer.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("orders"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	denied("producer GetShardIterator", err, "GetShardIterator")
	_, err = producer.ListStreams(ctx, &kinesis.ListStreamsInput{})
	denied("producer ListStreams", err, "ListStreams")

	// The reader reads orders, and nothing of audit.
	it, err := reader.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("orders"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatalf("reader GetShardIterator on orders: %v", err)
	}
	got, err := reader.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(got.Records) != 2 {
		t.Fatalf("reader GetRecords on orders: %d records, %v", len(got.Records), err)
	}
	_, err = reader.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("k"), Data: []byte("x")})
	denied("reader PutRecord", err, "PutRecord")
	_, err = reader.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("audit"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	denied("reader GetShardIterator on audit", err, "GetShardIterator")
	// An iterator of audit, got by the admin, does not open audit to the
	// reader: GetRecords is decided on the iterator's stream.
	ait, err := admin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("audit"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	_, err = reader.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: ait.ShardIterator})
	denied("reader GetRecords with audit's iterator", err, "GetRecords")
}

// TestSignedPoliciesFirehose: the Firehose API is decided on firehose:
// actions and delivery stream ARNs.
func TestSignedPoliciesFirehose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.json")
	creds := `{"users":[
 {"name":"admin","keys":[{"access_key_id":"AKIAADMIN","secret_access_key":"admin-secret"}],
  "policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"firehose:*","Resource":"*"}]}]},
 {"name":"sender","keys":[{"access_key_id":"AKIASENDER","secret_access_key":"sender-secret"}],
  "policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"firehose:PutRecord*","Resource":"arn:aws:firehose:us-east-1:*:deliverystream/logs"}]}]}]}`
	if err := os.WriteFile(path, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	buckets := t.TempDir()
	if err := os.Mkdir(filepath.Join(buckets, "archive"), 0o700); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, t.TempDir(), "--engine", "memory", "--transition-delay", "0s", "--credentials", path, "--buckets-dir", buckets)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	admin := firehoseClientFor(srv.endpoint(), tr, "AKIAADMIN", "admin-secret")
	sender := firehoseClientFor(srv.endpoint(), tr, "AKIASENDER", "sender-secret")
	ctx := context.Background()
	for _, name := range []string{"logs", "other"} {
		if _, err := admin.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
			DeliveryStreamName: aws.String(name),
			ExtendedS3DestinationConfiguration: &fhtypes.ExtendedS3DestinationConfiguration{
				BucketARN: aws.String("arn:aws:s3:::archive"), RoleARN: aws.String("arn:aws:iam::000000000000:role/firehose"),
			},
		}); err != nil {
			t.Fatalf("admin CreateDeliveryStream %s: %v", name, err)
		}
	}
	if _, err := sender.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("logs"), Record: &fhtypes.Record{Data: []byte("line\n")}}); err != nil {
		t.Fatalf("sender PutRecord to logs: %v", err)
	}
	for what, err := range map[string]error{
		"PutRecord to other": func() error {
			_, err := sender.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("other"), Record: &fhtypes.Record{Data: []byte("x")}})
			return err
		}(),
		"DeleteDeliveryStream": func() error {
			_, err := sender.DeleteDeliveryStream(ctx, &firehose.DeleteDeliveryStreamInput{DeliveryStreamName: aws.String("logs")})
			return err
		}(),
	} {
		code, msg := apiErr(err)
		if code != "AccessDeniedException" || !strings.Contains(msg, "firehose:") {
			t.Fatalf("sender %s: %s %q, want AccessDeniedException for a firehose: action", what, code, msg)
		}
	}
}

func firehoseClientFor(endpoint string, rt http.RoundTripper, akid, secret string) *firehose.Client {
	return firehose.New(firehose.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, ""),
		HTTPClient:       &http.Client{Transport: rt},
		RetryMaxAttempts: 1,
	})
}
