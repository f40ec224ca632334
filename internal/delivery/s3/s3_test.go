package s3_test

import (
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/delivery/s3"
	"github.com/runnel/runnel/internal/delivery/s3/s3test"
)

func TestDeliverToVersity(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("lake")
	ctx := context.Background()
	conn := s3.Connection{Endpoint: srv.Endpoint(), AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PathStyle: true}
	b, err := s3.New(ctx, conn, "lake")
	if err != nil {
		t.Fatal(err)
	}
	key := "2026/12/06/05/orders-1-2026-12-06-05-31-02-id.gz"
	for _, body := range []string{"first version", "second"} {
		if err := b.Deliver(ctx, delivery.Object{Key: key, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
		out, err := srv.Client().GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("lake"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(got) != body {
			t.Fatalf("read %q, want %q", got, body)
		}
	}

	missing, err := s3.New(ctx, conn, "no-such-bucket")
	if err != nil {
		t.Fatal(err)
	}
	if err := missing.Deliver(ctx, delivery.Object{Key: "k", Body: []byte("x")}); !delivery.IsPermanent(err) {
		t.Fatalf("missing bucket: %v, want a permanent error", err)
	}
	wrong := conn
	wrong.SecretAccessKey = "wrong"
	bad, _ := s3.New(ctx, wrong, "lake")
	if err := bad.Deliver(ctx, delivery.Object{Key: "k", Body: []byte("x")}); !delivery.IsPermanent(err) {
		t.Fatalf("wrong secret: %v, want a permanent error", err)
	}
	srv.Stop()
	if err := b.Deliver(ctx, delivery.Object{Key: "k", Body: []byte("x")}); err == nil || delivery.IsPermanent(err) {
		t.Fatalf("store down: %v, want a retryable error", err)
	}
}
