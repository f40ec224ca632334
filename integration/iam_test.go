package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/iam"
	"github.com/runnel/runnel/internal/kinesisapi"
	"github.com/runnel/runnel/internal/sdkclient"
	rserver "github.com/runnel/runnel/internal/server"
	"github.com/runnel/runnel/internal/streams"
)

const (
	iamAccount = "123456789012"
	iamPartner = "210987654321"
	ordersARN  = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
	clicksARN  = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
)

// principalsByKey stands in for authentication: it maps a request's access
// key (from its SigV4 Authorization header) to a principal and puts that in
// the request's context, where the authorizer finds it.
func principalsByKey(users map[string]*iam.Principal, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if _, cred, ok := strings.Cut(auth, "Credential="); ok {
			key, _, _ := strings.Cut(cred, "/")
			if p := users[key]; p != nil {
				r = r.WithContext(iam.WithPrincipal(r.Context(), p))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// startPolicyServer runs the streams service behind the IAM authorizer on a
// loopback port, with principals chosen by access key.
func startPolicyServer(t *testing.T, users map[string]*iam.Principal, selfSigned bool) (endpoint string, roots *x509.CertPool) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := mem.New(mem.DefaultOptions())
	sopts := streams.DefaultOptions()
	sopts.AccountID = iamAccount
	sopts.TransitionDelay = 0
	sopts.Logger = log
	svc, err := streams.New(ctx, eng, sopts)
	if err != nil {
		t.Fatal(err)
	}
	az, err := iam.NewAuthorizer(iam.AuthorizerOptions{Region: sopts.Region, AccountID: iamAccount, Resources: svc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hopts := kinesisapi.DefaultOptions()
	hopts.Logger = log
	hopts.Authorize = kinesisapi.IAMAuthorizer(az)
	h, err := kinesisapi.NewHandler(svc, hopts)
	if err != nil {
		t.Fatal(err)
	}
	sv := rserver.DefaultOptions()
	sv.Addr = "127.0.0.1:0"
	sv.Logger = log
	sv.TLSSelfSigned = selfSigned
	srv, err := rserver.Listen(ctx, principalsByKey(users, h), sv)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		_ = svc.Close()
		_ = eng.Close()
	})
	if selfSigned {
		roots = x509.NewCertPool()
		roots.AddCert(srv.Certificate())
	}
	return srv.Endpoint(), roots
}

func clientAs(endpoint, key string) *kinesis.Client {
	return clientTrusting(endpoint, key, nil)
}

// clientTrusting is clientAs for a TLS server whose certificate roots
// vouch for.
func clientTrusting(endpoint, key string, roots *x509.CertPool) *kinesis.Client {
	var hc aws.HTTPClient
	if roots != nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	}
	return kinesis.New(kinesis.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(key, "secret", ""),
		HTTPClient:       sdkclient.Guard(hc),
		RetryMaxAttempts: 1,
	})
}

// wantDenied checks that err is Kinesis' AccessDeniedException with msg.
func wantDenied(t *testing.T, what string, err error, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("%s: got %v, want AccessDeniedException", what, err)
	}
	if ae.ErrorMessage() != msg {
		t.Fatalf("%s: message\n%s\nwant\n%s", what, ae.ErrorMessage(), msg)
	}
}

func TestIAMPolicies(t *testing.T) {
	ctx := context.Background()
	users := map[string]*iam.Principal{
		"AKIAADMIN": {ARN: "arn:aws:iam::123456789012:user/admin", Account: iamAccount, Policies: []string{
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`}},
		"AKIAPRODUCER": {ARN: "arn:aws:iam::123456789012:user/producer", Account: iamAccount, Policies: []string{
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesis:PutRecord","kinesis:PutRecords","kinesis:DescribeStreamSummary","kinesis:ListShards"],"Resource":"arn:aws:kinesis:*:123456789012:stream/*"}]}`}},
		"AKIAREADER": {ARN: "arn:aws:iam::123456789012:user/reader", Account: iamAccount, Policies: []string{
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesis:GetRecords","kinesis:GetShardIterator","kinesis:ListShards"],"Resource":"` + ordersARN + `"}]}`}},
		"AKIAFANOUT": {ARN: "arn:aws:iam::123456789012:user/fanout", Account: iamAccount, Policies: []string{
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesis:SubscribeToShard","kinesis:DescribeStreamConsumer"],"Resource":"` + ordersARN + `/consumer/*"}]}`}},
		"AKIAPARTNER": {ARN: "arn:aws:iam::210987654321:user/bob", Account: iamPartner, Policies: []string{
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`}},
	}
	endpoint, _ := startPolicyServer(t, users, false)
	admin, producer := clientAs(endpoint, "AKIAADMIN"), clientAs(endpoint, "AKIAPRODUCER")
	reader, partner := clientAs(endpoint, "AKIAREADER"), clientAs(endpoint, "AKIAPARTNER")
	stranger := clientAs(endpoint, "AKIASTRANGER") // no principal: not checked

	for _, name := range []string{"orders", "clicks"} {
		if _, err := admin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}

	// The producer writes, but may neither delete nor read.
	put := &kinesis.PutRecordsInput{StreamName: aws.String("orders"), Records: []types.PutRecordsRequestEntry{
		{Data: []byte("order-1"), PartitionKey: aws.String("k")}}}
	if out, err := producer.PutRecords(ctx, put); err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("producer PutRecords: %v %v", out, err)
	}
	_, err := producer.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("orders")})
	wantDenied(t, "producer DeleteStream", err, "User: arn:aws:iam::123456789012:user/producer is not authorized to perform: kinesis:DeleteStream on resource: "+ordersARN+" because no identity-based policy allows the kinesis:DeleteStream action")
	_, err = producer.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("orders"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	wantDenied(t, "producer GetShardIterator", err, "User: arn:aws:iam::123456789012:user/producer is not authorized to perform: kinesis:GetShardIterator on resource: "+ordersARN+" because no identity-based policy allows the kinesis:GetShardIterator action")
	_, err = producer.ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantDenied(t, "producer ListStreams", err, "User: arn:aws:iam::123456789012:user/producer is not authorized to perform: kinesis:ListStreams because no identity-based policy allows the kinesis:ListStreams action")

	// The reader reads orders, and only orders.
	it, err := reader.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("orders"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	got, err := reader.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(got.Records) != 1 || string(got.Records[0].Data) != "order-1" {
		t.Fatalf("reader GetRecords: %v %v", got, err)
	}
	_, err = reader.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), Data: []byte("x"), PartitionKey: aws.String("k")})
	wantDenied(t, "reader PutRecord", err, "User: arn:aws:iam::123456789012:user/reader is not authorized to perform: kinesis:PutRecord on resource: "+ordersARN+" because no identity-based policy allows the kinesis:PutRecord action")
	_, err = reader.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("clicks"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	wantDenied(t, "reader GetShardIterator clicks", err, "User: arn:aws:iam::123456789012:user/reader is not authorized to perform: kinesis:GetShardIterator on resource: "+clicksARN+" because no identity-based policy allows the kinesis:GetShardIterator action")
	// An iterator of clicks, obtained by someone allowed, does not let
	// the reader in: GetRecords is authorized on the iterator's stream.
	cit, err := admin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("clicks"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	_, err = reader.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: cit.ShardIterator})
	wantDenied(t, "reader GetRecords clicks", err, "User: arn:aws:iam::123456789012:user/reader is not authorized to perform: kinesis:GetRecords on resource: "+clicksARN+" because no identity-based policy allows the kinesis:GetRecords action")

	// Enhanced fan-out is authorized on the consumer's ARN: the fan-out
	// identity may subscribe, the reader (allowed on the stream only) not.
	consumerARN := registerConsumer(t, admin, ordersARN, "app")
	fanout := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAFANOUT", "secret", ""),
		HTTPClient:  sdkclient.Guard(&http.Client{Transport: h2cTransport()})})
	readerH2 := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAREADER", "secret", ""),
		HTTPClient:  sdkclient.Guard(&http.Client{Transport: h2cTransport()}), RetryMaxAttempts: 1})
	if _, err := fanout.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(ordersARN), ConsumerName: aws.String("app")}); err != nil {
		t.Fatalf("fan-out DescribeStreamConsumer by name: %v", err)
	}
	es := subscribe(t, fanout, consumerARN, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	r := readRecords(es, 1, 20*time.Second)
	es.Close()
	if len(r.records) != 1 || string(r.records[0].Data) != "order-1" {
		t.Fatalf("fan-out read %+v", r)
	}
	_, err = readerH2.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(consumerARN), ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}})
	wantDenied(t, "reader SubscribeToShard", err, "User: arn:aws:iam::123456789012:user/reader is not authorized to perform: kinesis:SubscribeToShard on resource: "+consumerARN+" because no identity-based policy allows the kinesis:SubscribeToShard action")

	// Another account: its own identity policy allows everything, but
	// the stream's owner has not shared it yet.
	_, err = partner.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(ordersARN), Records: put.Records})
	wantDenied(t, "partner before sharing", err, "User: arn:aws:iam::210987654321:user/bob is not authorized to perform: kinesis:PutRecords on resource: "+ordersARN+" because no resource-based policy allows the kinesis:PutRecords action")
	share := `{"Version":"2012-10-17","Statement":[{"Sid":"partner-writes","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":["kinesis:PutRecords","kinesis:DescribeStreamSummary"],"Resource":"` + ordersARN + `"}]}`
	if _, err := admin.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: aws.String(ordersARN), Policy: aws.String(share)}); err != nil {
		t.Fatal(err)
	}
	if out, err := partner.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(ordersARN), Records: put.Records}); err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("partner PutRecords after sharing: %v %v", out, err)
	}
	if _, err := partner.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(ordersARN)}); err != nil {
		t.Fatalf("partner DescribeStreamSummary: %v", err)
	}
	_, err = partner.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: aws.String(clicksARN), Records: put.Records})
	wantDenied(t, "partner on clicks", err, "User: arn:aws:iam::210987654321:user/bob is not authorized to perform: kinesis:PutRecords on resource: "+clicksARN+" because no resource-based policy allows the kinesis:PutRecords action")
	_, err = partner.GetResourcePolicy(ctx, &kinesis.GetResourcePolicyInput{ResourceARN: aws.String(ordersARN)})
	wantDenied(t, "partner GetResourcePolicy", err, "User: arn:aws:iam::210987654321:user/bob is not authorized to perform: kinesis:GetResourcePolicy on resource: "+ordersARN+" because no resource-based policy allows the kinesis:GetResourcePolicy action")

	// A deny in the resource policy stops even the owner's admin.
	guard := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"kinesis:DeleteStream","Resource":"` + ordersARN + `"}]}`
	if _, err := admin.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: aws.String(ordersARN), Policy: aws.String(guard)}); err != nil {
		t.Fatal(err)
	}
	_, err = admin.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("orders")})
	wantDenied(t, "admin DeleteStream under a deny", err, "User: arn:aws:iam::123456789012:user/admin is not authorized to perform: kinesis:DeleteStream on resource: "+ordersARN+" with an explicit deny in a resource-based policy")

	// A malformed policy is refused with Kinesis' error type.
	_, err = admin.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: aws.String(ordersARN), Policy: aws.String(`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`)})
	var inv *types.InvalidArgumentException
	if !errors.As(err, &inv) || !strings.Contains(aws.ToString(inv.Message), "Principal") {
		t.Fatalf("malformed policy: %v", err)
	}

	// The AWS CLI (botocore) reads the same refusal.
	if cli := awsCLICheck(); cli != "" {
		cmd := exec.Command(cli, "--endpoint-url", endpoint, "--region", "us-east-1", "kinesis", "delete-stream", "--stream-name", "clicks")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIAPRODUCER", "AWS_SECRET_ACCESS_KEY=secret", "AWS_PAGER=",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		want := "An error occurred (AccessDeniedException) when calling the DeleteStream operation: User: arn:aws:iam::123456789012:user/producer is not authorized to perform: kinesis:DeleteStream on resource: " + clicksARN + " because no identity-based policy allows the kinesis:DeleteStream action"
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("aws kinesis delete-stream as the producer: %v\n%s", err, out)
		}
	}

	// Requests without a principal are not checked.
	if _, err := stranger.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("unauthenticated ListStreams: %v", err)
	}
	if _, err := admin.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("clicks")}); err != nil {
		t.Fatalf("admin DeleteStream clicks: %v", err)
	}
}

// awsCLICheck returns the path of the AWS CLI v2, or "" when it is not
// installed (the SDK's checks above stand alone then).
func awsCLICheck() string {
	for _, p := range []string{"/usr/bin/aws", "/usr/local/bin/aws"} {
		if out, err := exec.Command(p, "--version").CombinedOutput(); err == nil && strings.HasPrefix(string(out), "aws-cli/2") {
			return p
		}
	}
	return ""
}

// TestIAMSecureTransport: aws:SecureTransport is true exactly for requests
// that came over TLS, so a policy can refuse plain-text access.
func TestIAMSecureTransport(t *testing.T) {
	ctx := context.Background()
	users := map[string]*iam.Principal{
		"AKIATLSONLY": {ARN: "arn:aws:iam::123456789012:user/careful", Account: iamAccount, Policies: []string{
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"},
			  {"Sid":"TLSOnly","Effect":"Deny","Action":"kinesis:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`}},
	}
	plain, _ := startPolicyServer(t, users, false)
	secure, roots := startPolicyServer(t, users, true)
	if !strings.HasPrefix(secure, "https://") {
		t.Fatalf("endpoint %s is not TLS", secure)
	}
	_, err := clientAs(plain, "AKIATLSONLY").ListStreams(ctx, &kinesis.ListStreamsInput{})
	wantDenied(t, "ListStreams over plain HTTP", err, "User: arn:aws:iam::123456789012:user/careful is not authorized to perform: kinesis:ListStreams with an explicit deny in an identity-based policy")
	if _, err := clientTrusting(secure, "AKIATLSONLY", roots).ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("ListStreams over TLS: %v", err)
	}
}
