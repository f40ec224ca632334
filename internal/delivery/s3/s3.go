// Package s3 is the S3-compatible destination of delivery streams: each
// object is one PutObject to a bucket of an S3-compatible store (AWS S3,
// MinIO, versitygw, Ceph RGW ...), reached with the endpoint and
// credentials of the server's configuration. PutObject replaces an object
// of the same key whole, which is what makes a batch written again after
// a crash replace its object instead of adding one.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/runnel/runnel/internal/delivery"
)

// Connection is how to reach an S3-compatible store.
type Connection struct {
	// Endpoint is the store's URL ("http://127.0.0.1:7070"); empty means
	// AWS S3 of Region.
	Endpoint string
	// Region signs the requests. Default "us-east-1".
	Region string
	// AccessKeyID and SecretAccessKey are the store's credentials; both
	// empty means the AWS SDK's default chain (environment, profile,
	// instance role).
	AccessKeyID, SecretAccessKey string
	// PathStyle addresses buckets as endpoint/bucket rather than
	// bucket.endpoint, as most self-hosted stores need.
	PathStyle bool
	// HTTPClient, when set, sends the requests (tests).
	HTTPClient *http.Client
}

// Bucket is one bucket of a store.
type Bucket struct {
	client *s3.Client
	name   string
}

var _ delivery.Destination = (*Bucket)(nil)

// New returns the destination of bucket name on the store c describes.
func New(ctx context.Context, c Connection, name string) (*Bucket, error) {
	if name == "" {
		return nil, errors.New("s3: empty bucket name")
	}
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := s3.Options{
		Region:       region,
		UsePathStyle: c.PathStyle,
		// The store need not know the newer checksum trailers.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if c.Endpoint != "" {
		opts.BaseEndpoint = aws.String(c.Endpoint)
	}
	if c.AccessKeyID != "" || c.SecretAccessKey != "" {
		opts.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")
	} else {
		cfg, err := defaultConfig(ctx, region)
		if err != nil {
			return nil, err
		}
		opts.Credentials = cfg.Credentials
	}
	if c.HTTPClient != nil {
		opts.HTTPClient = c.HTTPClient
	}
	return &Bucket{client: s3.New(opts), name: name}, nil
}

// Name returns the bucket's name on the store.
func (b *Bucket) Name() string { return b.name }

// Deliver puts the object.
func (b *Bucket) Deliver(ctx context.Context, obj delivery.Object) error {
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.name),
		Key:           aws.String(obj.Key),
		Body:          bytes.NewReader(obj.Body),
		ContentLength: aws.Int64(int64(len(obj.Body))),
	})
	if err != nil {
		return classify(fmt.Errorf("put s3://%s/%s: %w", b.name, obj.Key, err))
	}
	return nil
}

// permanentCodes are S3 errors that retrying the same request cannot cure
// until someone changes the store or the configuration.
var permanentCodes = map[string]bool{
	"NoSuchBucket":          true,
	"AccessDenied":          true,
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"InvalidBucketName":     true,
	"AllAccessDisabled":     true,
	"AccountProblem":        true,
}

func classify(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && permanentCodes[ae.ErrorCode()] {
		return delivery.Permanent(err)
	}
	return err
}
