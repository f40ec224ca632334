// Package leaseapi is the wire layer of lease tables: the operations of
// docs/LEASES.md, their input and output shapes, served on the Kinesis port
// under the X-Amz-Target prefix TargetPrefix by the same protocol plumbing
// as Kinesis (JSON 1.1 and CBOR 1.1, the error envelope, request ids).
package leaseapi

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/runnel/runnel/internal/iam"
	"github.com/runnel/runnel/internal/leases"
)

// TargetPrefix is the service part of X-Amz-Target for lease tables.
const TargetPrefix = "RunnelLeases_20261206"

// API serves lease tables from a lease service.
type API struct {
	svc *leases.Service
}

// New returns the API of svc.
func New(svc *leases.Service) *API { return &API{svc: svc} }

// TargetPrefix returns the X-Amz-Target service name the API answers to.
func (a *API) TargetPrefix() string { return TargetPrefix }

// StreamRef names a stream by name or ARN, as Kinesis operations do.
type StreamRef struct {
	StreamName *string `json:"StreamName,omitempty"`
	StreamARN  *string `json:"StreamARN,omitempty"`
}

// TableInput names a table: an application on a stream.
type TableInput struct {
	StreamRef
	ApplicationName *string `json:"ApplicationName,omitempty"`
}

// CreateLeaseTableInput is CreateLeaseTable's input.
type CreateLeaseTableInput struct {
	TableInput
	InitialPosition *Position `json:"InitialPosition,omitempty"`
}

// LeaseTableOutput answers CreateLeaseTable and DescribeLeaseTable.
type LeaseTableOutput struct {
	LeaseTable *Table `json:"LeaseTable"`
}

// ListLeaseTablesInput is ListLeaseTables' input.
type ListLeaseTablesInput struct {
	StreamRef
}

// ListLeaseTablesOutput is ListLeaseTables' output.
type ListLeaseTablesOutput struct {
	LeaseTables []*Table `json:"LeaseTables"`
}

// ListLeasesOutput is ListLeases' output.
type ListLeasesOutput struct {
	Leases []leases.Lease `json:"Leases"`
}

// LeaseInput names one lease, its owner and the counter the owner saw.
type LeaseInput struct {
	TableInput
	LeaseKey *string `json:"LeaseKey,omitempty"`
	Owner    *string `json:"Owner,omitempty"`
	Counter  *uint64 `json:"Counter,omitempty"`
}

// HandOffLeaseInput is HandOffLease's input.
type HandOffLeaseInput struct {
	LeaseInput
	NewOwner *string `json:"NewOwner,omitempty"`
}

// CheckpointInput is Checkpoint's input.
type CheckpointInput struct {
	LeaseInput
	SequenceNumber    *string `json:"SequenceNumber,omitempty"`
	SubSequenceNumber *uint64 `json:"SubSequenceNumber,omitempty"`
}

// LeaseOutput answers the operations that change one lease.
type LeaseOutput struct {
	Lease *leases.Lease `json:"Lease"`
}

// Renewal is one entry of RenewLeases.
type Renewal struct {
	LeaseKey *string `json:"LeaseKey,omitempty"`
	Counter  *uint64 `json:"Counter,omitempty"`
}

// RenewLeasesInput is RenewLeases' input.
type RenewLeasesInput struct {
	TableInput
	Owner  *string   `json:"Owner,omitempty"`
	Leases []Renewal `json:"Leases"`
}

// RenewLeasesOutput is RenewLeases' output.
type RenewLeasesOutput struct {
	Renewed []leases.Lease `json:"Renewed"`
	Lost    []leases.Lease `json:"Lost"`
}

// operations maps each operation to a constructor of its input.
var operations = map[string]func() any{
	"CreateLeaseTable":   func() any { return new(CreateLeaseTableInput) },
	"DescribeLeaseTable": func() any { return new(TableInput) },
	"ListLeaseTables":    func() any { return new(ListLeaseTablesInput) },
	"DeleteLeaseTable":   func() any { return new(TableInput) },
	"ListLeases":         func() any { return new(TableInput) },
	"TakeLease":          func() any { return new(LeaseInput) },
	"RenewLeases":        func() any { return new(RenewLeasesInput) },
	"HandOffLease":       func() any { return new(HandOffLeaseInput) },
	"ReleaseLease":       func() any { return new(LeaseInput) },
	"Checkpoint":         func() any { return new(CheckpointInput) },
}

// NewInput returns a new, empty input for op, or nil when the API has no
// such operation.
func (a *API) NewInput(op string) any {
	f := operations[op]
	if f == nil {
		return nil
	}
	return f()
}

// Call runs op on an input NewInput made and the plumbing decoded. Errors
// the client should see are *leases.Error; any other is an internal fault.
func (a *API) Call(ctx context.Context, op string, in any) (any, error) {
	switch in := in.(type) {
	case *CreateLeaseTableInput:
		ref, err := in.ref()
		if err != nil {
			return nil, err
		}
		var pos leases.Position
		if p := in.InitialPosition; p != nil {
			pos.Type = p.Type
			if p.Timestamp != nil {
				ts := time.UnixMilli(int64(*p.Timestamp * 1000)).UTC()
				pos.Timestamp = &ts
			}
		}
		t, err := a.svc.CreateTable(ctx, ref, pos)
		if err != nil {
			return nil, err
		}
		return &LeaseTableOutput{LeaseTable: tableOut(t)}, nil
	case *ListLeaseTablesInput:
		name, err := in.name()
		if err != nil {
			return nil, err
		}
		ts, err := a.svc.ListTables(ctx, name)
		if err != nil {
			return nil, err
		}
		out := &ListLeaseTablesOutput{LeaseTables: make([]*Table, len(ts))}
		for i, t := range ts {
			out.LeaseTables[i] = tableOut(t)
		}
		return out, nil
	case *TableInput:
		ref, err := in.ref()
		if err != nil {
			return nil, err
		}
		switch op {
		case "DescribeLeaseTable":
			t, err := a.svc.DescribeTable(ctx, ref)
			if err != nil {
				return nil, err
			}
			return &LeaseTableOutput{LeaseTable: tableOut(t)}, nil
		case "DeleteLeaseTable":
			return nil, a.svc.DeleteTable(ctx, ref)
		case "ListLeases":
			ls, err := a.svc.ListLeases(ctx, ref)
			if err != nil {
				return nil, err
			}
			return &ListLeasesOutput{Leases: ls}, nil
		}
	case *LeaseInput:
		ref, key, owner, counter, err := in.args()
		if err != nil {
			return nil, err
		}
		var l *leases.Lease
		switch op {
		case "TakeLease":
			l, err = a.svc.Take(ctx, ref, key, owner, counter)
		case "ReleaseLease":
			l, err = a.svc.Release(ctx, ref, key, owner, counter)
		default:
			return nil, fmt.Errorf("leaseapi: %s with a lease input", op)
		}
		if err != nil {
			return nil, err
		}
		return &LeaseOutput{Lease: l}, nil
	case *HandOffLeaseInput:
		ref, key, owner, counter, err := in.args()
		if err != nil {
			return nil, err
		}
		if in.NewOwner == nil {
			return nil, missing("NewOwner")
		}
		l, err := a.svc.HandOff(ctx, ref, key, owner, counter, *in.NewOwner)
		if err != nil {
			return nil, err
		}
		return &LeaseOutput{Lease: l}, nil
	case *CheckpointInput:
		ref, key, owner, counter, err := in.args()
		if err != nil {
			return nil, err
		}
		if in.SequenceNumber == nil {
			return nil, missing("SequenceNumber")
		}
		var sub uint64
		if in.SubSequenceNumber != nil {
			sub = *in.SubSequenceNumber
		}
		l, err := a.svc.Checkpoint(ctx, ref, key, owner, counter, *in.SequenceNumber, sub)
		if err != nil {
			return nil, err
		}
		return &LeaseOutput{Lease: l}, nil
	case *RenewLeasesInput:
		ref, err := in.ref()
		if err != nil {
			return nil, err
		}
		if in.Owner == nil {
			return nil, missing("Owner")
		}
		rs := make([]leases.Renewal, len(in.Leases))
		for i, r := range in.Leases {
			if r.LeaseKey == nil || r.Counter == nil {
				return nil, &leases.Error{Code: leases.CodeInvalidArgument, Message: fmt.Sprintf("Leases[%d] needs LeaseKey and Counter.", i)}
			}
			rs[i] = leases.Renewal{LeaseKey: *r.LeaseKey, Counter: *r.Counter}
		}
		renewed, lost, err := a.svc.Renew(ctx, ref, *in.Owner, rs)
		if err != nil {
			return nil, err
		}
		out := &RenewLeasesOutput{Renewed: renewed, Lost: lost}
		if out.Renewed == nil {
			out.Renewed = []leases.Lease{}
		}
		if out.Lost == nil {
			out.Lost = []leases.Lease{}
		}
		return out, nil
	}
	return nil, fmt.Errorf("leaseapi: no handler for %s with %T", op, in)
}

// HasOutput reports whether op answers with a body.
func (a *API) HasOutput(op string) bool { return op != "DeleteLeaseTable" }

func missing(member string) *leases.Error {
	return &leases.Error{Code: leases.CodeInvalidArgument, Message: member + " is required."}
}

// name returns the stream's name, from StreamName or the name in StreamARN.
func (r StreamRef) name() (string, error) {
	switch {
	case r.StreamName != nil && r.StreamARN != nil:
		if n, ok := nameFromARN(*r.StreamARN); !ok || n != *r.StreamName {
			return "", &leases.Error{Code: leases.CodeInvalidArgument, Message: "StreamName and StreamARN name different streams."}
		}
		return *r.StreamName, nil
	case r.StreamName != nil:
		return *r.StreamName, nil
	case r.StreamARN != nil:
		n, ok := nameFromARN(*r.StreamARN)
		if !ok {
			return "", &leases.Error{Code: leases.CodeInvalidArgument, Message: fmt.Sprintf("StreamARN %s is invalid.", *r.StreamARN)}
		}
		return n, nil
	}
	return "", &leases.Error{Code: leases.CodeInvalidArgument, Message: "Either StreamName or StreamARN must be provided."}
}

// nameFromARN returns the stream name of arn:aws:kinesis:<region>:<account>:stream/<name>.
func nameFromARN(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kinesis" {
		return "", false
	}
	name, ok := strings.CutPrefix(parts[5], "stream/")
	return name, ok && name != "" && !strings.Contains(name, "/")
}

func (in *TableInput) ref() (leases.TableRef, error) {
	name, err := in.name()
	if err != nil {
		return leases.TableRef{}, err
	}
	if in.ApplicationName == nil {
		return leases.TableRef{}, missing("ApplicationName")
	}
	return leases.TableRef{App: *in.ApplicationName, Stream: name}, nil
}

func (in *LeaseInput) args() (ref leases.TableRef, key, owner string, counter uint64, err error) {
	if ref, err = in.ref(); err != nil {
		return
	}
	switch {
	case in.LeaseKey == nil:
		err = missing("LeaseKey")
	case in.Owner == nil:
		err = missing("Owner")
	case in.Counter == nil:
		err = missing("Counter")
	default:
		key, owner, counter = *in.LeaseKey, *in.Owner, *in.Counter
	}
	return
}

// Table is a lease table on the wire. Timestamps are epoch seconds, as in
// every AWS JSON protocol.
type Table struct {
	ApplicationName   string   `json:"ApplicationName"`
	StreamName        string   `json:"StreamName"`
	StreamARN         string   `json:"StreamARN"`
	InitialPosition   Position `json:"InitialPosition"`
	CreationTimestamp float64  `json:"CreationTimestamp"`
	LeaseCount        int      `json:"LeaseCount"`
}

// Position is a table's initial position on the wire.
type Position struct {
	Type      string   `json:"Type,omitempty"`
	Timestamp *float64 `json:"Timestamp,omitempty"`
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func tableOut(t *leases.Table) *Table {
	out := &Table{
		ApplicationName:   t.ApplicationName,
		StreamName:        t.StreamName,
		StreamARN:         t.StreamARN,
		InitialPosition:   Position{Type: t.InitialPosition.Type},
		CreationTimestamp: epoch(t.CreationTimestamp),
		LeaseCount:        t.LeaseCount,
	}
	if ts := t.InitialPosition.Timestamp; ts != nil {
		e := epoch(*ts)
		out.InitialPosition.Timestamp = &e
	}
	return out
}

// IAMService is the IAM service prefix of the lease tables' actions
// ("runnel-leases:TakeLease"), authorized on the stream's ARN.
func (a *API) IAMService() string { return iam.LeasesService }
