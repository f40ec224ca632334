package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The attributes of a lease item, as the KCL names them
// (DynamoDBLeaseSerializer). Those the store does not use are kept as they
// are: every change is an UpdateItem that names only what it changes.
const (
	attrKey           = "leaseKey"                     // S, the hash key: the shard id
	attrOwner         = "leaseOwner"                   // S, absent when nobody holds the lease
	attrCounter       = "leaseCounter"                 // N
	attrCheckpoint    = "checkpoint"                   // S: a sequence number, TRIM_HORIZON, LATEST, AT_TIMESTAMP or SHARD_END
	attrSubSeq        = "checkpointSubSequenceNumber"  // N
	attrSwitches      = "ownerSwitchesSinceCheckpoint" // N
	attrParents       = "parentShardId"                // SS
	attrChildren      = "childShardIds"                // SS
	attrPending       = "pendingCheckpoint"            // S, written by the KCL's two-phase checkpoints only
	attrPendingSub    = "pendingCheckpointSubSequenceNumber"
	attrPendingState  = "pendingCheckpointState" // B
	attrCheckpointOwn = "checkpointOwner"        // S, the KCL 3.x graceful hand-off
	attrStartHash     = "startingHashKey"        // S
	attrEndHash       = "endingHashKey"          // S
	attrEntityType    = "entityType"             // S, LEASE; KCL 3.x may keep other entities in the table
)

// entityLease is the entityType of a lease item; items of another type
// (stream or leader entries of newer KCLs) are not leases and are skipped.
const entityLease = "LEASE"

// DynamoDB is the part of the DynamoDB client (*dynamodb.Client) that
// DynamoDBStore uses.
type DynamoDB interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// ShardLister is the part of the Kinesis client (*kinesis.Client) that
// DynamoDBStore uses to learn the stream's shards.
type ShardLister interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

var _ ShardLister = (*kinesis.Client)(nil)

// DynamoDBStore is a LeaseStore on a DynamoDB table in the KCL's lease
// table schema, so a Go worker can continue from a table a Java KCL
// application left behind (and the other way round). Every change is a
// conditional write on the lease counter, as the KCL's are.
//
// DynamoDB does not know the stream, so the store keeps the table in step
// with the stream's shards itself, as the KCL's shard sync does: List adds
// a lease for every shard that has none and records the children of closed
// shards, listing the shards at most every ShardSyncInterval, or at once
// when a lease reached SHARD_END before its children were recorded.
type DynamoDBStore struct {
	db     DynamoDB
	kc     ShardLister
	table  string
	stream string
	o      dynamoOptions

	mu struct {
		sync.Mutex
		initial  Position  // the table's initial position, once known
		synced   time.Time // the last shard sync
		eagerAt  time.Time // the last shard sync a finished shard asked for
		prepared bool
	}
}

var _ LeaseStore = (*DynamoDBStore)(nil)

// DynamoDBOption configures a DynamoDBStore.
type DynamoDBOption func(*dynamoOptions)

type dynamoOptions struct {
	syncInterval time.Duration
	renewers     int
	now          func() time.Time
}

// ShardSyncInterval sets how often List asks the stream for its shards
// (default 10 s); a lease that reached SHARD_END without children recorded
// makes it ask sooner, at most once a second.
func ShardSyncInterval(d time.Duration) DynamoDBOption {
	return func(o *dynamoOptions) { o.syncInterval = d }
}

// NewDynamoDBStore returns the store of the lease table named table, for
// stream, on the DynamoDB client db; kc is the Kinesis client whose
// ListShards tells the store the stream's shards (the consumer's own).
func NewDynamoDBStore(db DynamoDB, table string, kc ShardLister, stream string, opts ...DynamoDBOption) (*DynamoDBStore, error) {
	if db == nil || kc == nil {
		return nil, errors.New("consumer: a DynamoDB store needs a DynamoDB and a Kinesis client")
	}
	if len(table) < 3 || len(table) > 255 {
		return nil, fmt.Errorf("consumer: DynamoDB table name %q is not 3 to 255 characters", table)
	}
	if stream == "" {
		return nil, errors.New("consumer: a DynamoDB store needs the stream name")
	}
	s := &DynamoDBStore{db: db, kc: kc, table: table, stream: stream,
		o: dynamoOptions{syncInterval: 10 * time.Second, renewers: 16, now: time.Now}}
	for _, opt := range opts {
		opt(&s.o)
	}
	if s.o.syncInterval <= 0 {
		return nil, fmt.Errorf("consumer: shard sync interval %v is not positive", s.o.syncInterval)
	}
	return s, nil
}

// Prepare creates the table unless it exists, waits until it is ACTIVE and
// adds the stream's leases. The KCL keeps no initial position in the
// table, so for an existing table it is read from the leases that were
// never checkpointed (tableInitial); when none is left the caller's
// initial is used, which only new shards without parents could still
// start at.
func (s *DynamoDBStore) Prepare(ctx context.Context, initial Position) (Position, error) {
	switch initial.Type {
	case TrimHorizon.Type, Latest.Type, "AT_TIMESTAMP":
	default:
		return Position{}, fmt.Errorf("consumer: initial position %q is not TRIM_HORIZON, LATEST or AT_TIMESTAMP", initial.Type)
	}
	created, err := s.createTable(ctx)
	if err != nil {
		return Position{}, err
	}
	pos := initial
	if !created {
		ls, err := s.scan(ctx)
		if err != nil {
			return Position{}, err
		}
		if t := tableInitial(ls); t != "" && t != initial.Type {
			pos = Position{Type: t}
			if t == "AT_TIMESTAMP" {
				// The table holds no timestamp and the worker has none:
				// from the oldest record on.
				pos.Timestamp = time.Unix(0, 0)
			}
		}
	}
	s.mu.Lock()
	s.mu.initial, s.mu.prepared = pos, true
	s.mu.Unlock()
	ls, err := s.scan(ctx)
	if err != nil {
		return Position{}, err
	}
	if _, err := s.syncShards(ctx, ls); err != nil {
		return Position{}, err
	}
	return pos, nil
}

// tableInitial is the initial position the leases show, or "" when none
// does: LATEST or AT_TIMESTAMP on any never-checkpointed lease (a child
// starts there only when the table did), or TRIM_HORIZON on one without
// parents (a child starts there whatever the table's position).
func tableInitial(ls []Lease) string {
	found := ""
	for _, l := range ls {
		switch l.Checkpoint {
		case Latest.Type, "AT_TIMESTAMP":
			return l.Checkpoint
		case TrimHorizon.Type:
			if len(l.Parents) == 0 {
				found = l.Checkpoint
			}
		}
	}
	return found
}

// createTable creates the table as the KCL does (hash key leaseKey of
// type S, on-demand billing) unless it exists, and waits until it is
// ACTIVE. It reports whether this call created it.
func (s *DynamoDBStore) createTable(ctx context.Context) (created bool, err error) {
	status, err := s.tableStatus(ctx)
	if errors.Is(err, ErrTableNotFound) {
		_, err = s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(s.table),
			KeySchema:            []ddb.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: ddb.KeyTypeHash}},
			AttributeDefinitions: []ddb.AttributeDefinition{{AttributeName: aws.String(attrKey), AttributeType: ddb.ScalarAttributeTypeS}},
			BillingMode:          ddb.BillingModePayPerRequest,
		})
		var inUse *ddb.ResourceInUseException
		switch {
		case err == nil:
			created = true
		case errors.As(err, &inUse): // another worker created it first
		default:
			return false, fmt.Errorf("consumer: create lease table %s: %w", s.table, err)
		}
		status = ""
	} else if err != nil {
		return false, err
	}
	for delay := 50 * time.Millisecond; status != ddb.TableStatusActive; delay = min(2*delay, time.Second) {
		if status != "" {
			if err := sleep(ctx, delay); err != nil {
				return false, err
			}
		}
		if status, err = s.tableStatus(ctx); err != nil {
			return false, err
		}
		if status == ddb.TableStatusDeleting || status == ddb.TableStatusArchived {
			return false, fmt.Errorf("consumer: lease table %s is %s", s.table, status)
		}
	}
	return created, nil
}

func (s *DynamoDBStore) tableStatus(ctx context.Context) (ddb.TableStatus, error) {
	out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	if err != nil {
		return "", s.wrap("describe lease table", err)
	}
	if out.Table == nil {
		return "", fmt.Errorf("consumer: describe lease table %s: answer without a table", s.table)
	}
	return out.Table.TableStatus, nil
}

// wrap adds context to a DynamoDB error and maps the ones the worker acts
// on to the package's sentinels.
func (s *DynamoDBStore) wrap(op string, err error) error {
	var nf *ddb.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fmt.Errorf("consumer: %s %s: %w: %w", op, s.table, ErrTableNotFound, err)
	}
	return fmt.Errorf("consumer: %s %s: %w", op, s.table, err)
}

// List returns the table's leases, after adding those of new shards when
// a shard sync is due. A sync that fails (ListShards throttled, say) does
// not fail the listing: the leases of the table are still the truth, and
// the sync is tried again a second later. Prepare, by contrast, fails when
// its sync does (the stream does not exist).
func (s *DynamoDBStore) List(ctx context.Context) ([]Lease, error) {
	ls, err := s.scan(ctx)
	if err != nil {
		return nil, err
	}
	if !s.syncDue(ls) {
		return ls, nil
	}
	changed, err := s.syncShards(ctx, ls)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		s.mu.Lock()
		s.mu.synced = s.o.now().Add(time.Second - s.o.syncInterval)
		s.mu.Unlock()
		return ls, nil
	}
	if !changed {
		return ls, nil
	}
	return s.scan(ctx)
}

// syncDue says whether List should ask the stream for its shards: the sync
// interval passed, or a lease reached SHARD_END and its children are not
// known yet (at most once a second for that).
func (s *DynamoDBStore) syncDue(ls []Lease) bool {
	now := s.o.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.synced.IsZero() || now.Sub(s.mu.synced) >= s.o.syncInterval {
		return true
	}
	if now.Sub(s.mu.eagerAt) < time.Second {
		return false
	}
	keys := make(map[string]bool, len(ls))
	for _, l := range ls {
		keys[l.Key] = true
	}
	for _, l := range ls {
		if l.Checkpoint != ShardEnd {
			continue
		}
		missing := len(l.Children) == 0
		for _, c := range l.Children {
			missing = missing || !keys[c]
		}
		if missing {
			s.mu.eagerAt = now
			return true
		}
	}
	return false
}

// syncShards adds a lease for every shard that has none and records the
// children of closed shards; it reports whether it changed the table.
func (s *DynamoDBStore) syncShards(ctx context.Context, have []Lease) (changed bool, err error) {
	shards, err := s.listShards(ctx)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	initial := s.mu.initial
	if !s.mu.prepared {
		if t := tableInitial(have); t != "" {
			initial = Position{Type: t}
		} else {
			initial = TrimHorizon
		}
	}
	s.mu.Unlock()
	byKey := make(map[string]Lease, len(have))
	for _, l := range have {
		byKey[l.Key] = l
	}
	known := make(map[string]bool, len(shards))
	children := map[string][]string{}
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		known[id] = true
		for _, p := range shardParents(sh) {
			children[p] = append(children[p], id)
		}
	}
	// A table started at LATEST begins with the open shards, each at its
	// latest record, as the KCL's shard sync does: the closed shards get no
	// lease, so their children do not replay what came before the start.
	latestStart := len(have) == 0 && initial.Type == Latest.Type
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		closed := sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
		var kids []string
		if closed {
			kids = slices.Sorted(slices.Values(children[id]))
		}
		cur, ok := byKey[id]
		if !ok {
			if closed && (latestStart || slices.ContainsFunc(kids, func(k string) bool { _, leased := byKey[k]; return leased })) {
				continue // skipped at a LATEST start, or its children began without it
			}
			start := initial.Type
			parents := shardParents(sh)
			for _, p := range parents {
				if known[p] && !latestStart { // a child starts where its parents ended
					start = TrimHorizon.Type
				}
			}
			added, err := s.createLease(ctx, sh, start, parents, kids)
			if err != nil {
				return changed, err
			}
			changed = changed || added
			continue
		}
		if len(kids) > 0 && !slices.Equal(slices.Sorted(slices.Values(cur.Children)), kids) {
			if err := s.setChildren(ctx, id, kids); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	s.mu.Lock()
	s.mu.synced = s.o.now()
	s.mu.Unlock()
	return changed, nil
}

func shardParents(sh ktypes.Shard) []string {
	var ps []string
	for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
		if p != nil && *p != "" {
			ps = append(ps, *p)
		}
	}
	return ps
}

// listShards returns every shard ListShards reports, open and closed.
func (s *DynamoDBStore) listShards(ctx context.Context) ([]ktypes.Shard, error) {
	var shards []ktypes.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(s.stream)}
	for {
		out, err := s.kc.ListShards(ctx, in)
		if err != nil {
			var nf *ktypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				return nil, fmt.Errorf("consumer: list shards of %s: %w: %w", s.stream, ErrTableNotFound, err)
			}
			return nil, fmt.Errorf("consumer: list shards of %s: %w", s.stream, err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil || *out.NextToken == "" {
			return shards, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// createLease writes a new shard's lease as the KCL's shard sync does,
// unless the shard has one already (another worker's sync wrote it).
func (s *DynamoDBStore) createLease(ctx context.Context, sh ktypes.Shard, start string, parents, kids []string) (bool, error) {
	item := map[string]ddb.AttributeValue{
		attrKey:        &ddb.AttributeValueMemberS{Value: aws.ToString(sh.ShardId)},
		attrCounter:    &ddb.AttributeValueMemberN{Value: "0"},
		attrCheckpoint: &ddb.AttributeValueMemberS{Value: start},
		attrSubSeq:     &ddb.AttributeValueMemberN{Value: "0"},
		attrSwitches:   &ddb.AttributeValueMemberN{Value: "0"},
		attrEntityType: &ddb.AttributeValueMemberS{Value: entityLease},
	}
	if len(parents) > 0 {
		item[attrParents] = &ddb.AttributeValueMemberSS{Value: parents}
	}
	if len(kids) > 0 {
		item[attrChildren] = &ddb.AttributeValueMemberSS{Value: kids}
	}
	if r := sh.HashKeyRange; r != nil && r.StartingHashKey != nil && r.EndingHashKey != nil {
		item[attrStartHash] = &ddb.AttributeValueMemberS{Value: *r.StartingHashKey}
		item[attrEndHash] = &ddb.AttributeValueMemberS{Value: *r.EndingHashKey}
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": attrKey},
	})
	var ccf *ddb.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, s.wrap("create lease "+aws.ToString(sh.ShardId)+" in", err)
	}
	return true, nil
}

// setChildren records a closed shard's children. Like the KCL's, this
// update leaves the counter alone: it is not a change of ownership.
func (s *DynamoDBStore) setChildren(ctx context.Context, key string, kids []string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       leaseKeyOf(key),
		UpdateExpression:          aws.String("SET #c = :c"),
		ConditionExpression:       aws.String("attribute_exists(#k)"),
		ExpressionAttributeNames:  map[string]string{"#c": attrChildren, "#k": attrKey},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":c": &ddb.AttributeValueMemberSS{Value: kids}},
	})
	var ccf *ddb.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return s.wrap("record children of "+key+" in", err)
	}
	return nil
}

// scan reads every lease of the table, strongly consistent, in shard id
// order. Items that are not leases (another entityType) or cannot be read
// as one are skipped, as the KCL skips them.
func (s *DynamoDBStore) scan(ctx context.Context) ([]Lease, error) {
	var ls []Lease
	in := &dynamodb.ScanInput{TableName: aws.String(s.table), ConsistentRead: aws.Bool(true)}
	for {
		out, err := s.db.Scan(ctx, in)
		if err != nil {
			return nil, s.wrap("scan lease table", err)
		}
		for _, item := range out.Items {
			if l, ok := leaseOf(item); ok {
				ls = append(ls, l)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	slices.SortFunc(ls, func(a, b Lease) int { return strings.Compare(a.Key, b.Key) })
	return ls, nil
}

func leaseKeyOf(key string) map[string]ddb.AttributeValue {
	return map[string]ddb.AttributeValue{attrKey: &ddb.AttributeValueMemberS{Value: key}}
}

// leaseOf reads a lease item; ok is false when the item is not a lease.
func leaseOf(item map[string]ddb.AttributeValue) (l Lease, ok bool) {
	if t, present := item[attrEntityType]; present {
		if s, isS := t.(*ddb.AttributeValueMemberS); !isS || s.Value != entityLease {
			return Lease{}, false
		}
	}
	key, isS := item[attrKey].(*ddb.AttributeValueMemberS)
	if !isS || key.Value == "" || strings.Contains(key.Value, ":") {
		// A key with a colon is a KCL multi-stream lease
		// (account:stream:epoch:shard), not one of this stream's shards.
		return Lease{}, false
	}
	l.Key = key.Value
	if o, isS := item[attrOwner].(*ddb.AttributeValueMemberS); isS {
		l.Owner = o.Value
	}
	var err error
	if l.Counter, err = numberOf(item, attrCounter); err != nil {
		return Lease{}, false
	}
	if l.SubSequenceNumber, err = numberOf(item, attrSubSeq); err != nil {
		return Lease{}, false
	}
	if c, isS := item[attrCheckpoint].(*ddb.AttributeValueMemberS); isS {
		l.Checkpoint = c.Value
	}
	if ps, isSS := item[attrParents].(*ddb.AttributeValueMemberSS); isSS {
		l.Parents = slices.Sorted(slices.Values(ps.Value))
	}
	if cs, isSS := item[attrChildren].(*ddb.AttributeValueMemberSS); isSS {
		l.Children = slices.Sorted(slices.Values(cs.Value))
	}
	return l, true
}

// numberOf reads an optional non-negative integer attribute (0 when absent).
func numberOf(item map[string]ddb.AttributeValue, name string) (uint64, error) {
	v, present := item[name]
	if !present {
		return 0, nil
	}
	n, isN := v.(*ddb.AttributeValueMemberN)
	if !isN {
		return 0, fmt.Errorf("attribute %s is not a number", name)
	}
	return strconv.ParseUint(n.Value, 10, 64)
}

func num(n uint64) ddb.AttributeValue {
	return &ddb.AttributeValueMemberN{Value: strconv.FormatUint(n, 10)}
}

// update applies one conditional UpdateItem to a lease and returns the
// lease as written. A failed condition is ErrLeaseConflict, with the lease
// as it is now in the message.
func (s *DynamoDBStore) update(ctx context.Context, op, key string, in *dynamodb.UpdateItemInput) (Lease, error) {
	in.TableName = aws.String(s.table)
	in.Key = leaseKeyOf(key)
	in.ReturnValues = ddb.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = ddb.ReturnValuesOnConditionCheckFailureAllOld
	out, err := s.db.UpdateItem(ctx, in)
	var ccf *ddb.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		cur, found, gerr := s.current(ctx, key, ccf.Item)
		if gerr != nil {
			return Lease{}, gerr
		}
		if !found {
			return Lease{}, fmt.Errorf("consumer: %s %s: lease %s does not exist: %w", op, s.table, key, ErrLeaseConflict)
		}
		return cur, &leaseConflict{op: op, table: s.table, now: cur}
	}
	if err != nil {
		return Lease{}, s.wrap(op+" lease "+key+" in", err)
	}
	l, ok := leaseOf(out.Attributes)
	if !ok {
		return Lease{}, fmt.Errorf("consumer: %s %s: lease %s is not readable after the update", op, s.table, key)
	}
	return l, nil
}

// current is a lease as it is now: from the item a failed condition
// returned, or, where the server returns none, read again.
func (s *DynamoDBStore) current(ctx context.Context, key string, item map[string]ddb.AttributeValue) (Lease, bool, error) {
	if len(item) == 0 {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: leaseKeyOf(key), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return Lease{}, false, s.wrap("read lease "+key+" in", err)
		}
		item = out.Item
	}
	if len(item) == 0 {
		return Lease{}, false, nil
	}
	l, ok := leaseOf(item)
	return l, ok, nil
}

// leaseConflict is the ErrLeaseConflict of a DynamoDB store, saying who
// holds the lease now.
type leaseConflict struct {
	op, table string
	now       Lease
}

func (e *leaseConflict) Error() string {
	owner := e.now.Owner
	if owner == "" {
		owner = "nobody"
	}
	return fmt.Sprintf("consumer: %s %s: lease %s is held by %s with counter %d: %v", e.op, e.table, e.now.Key, owner, e.now.Counter, ErrLeaseConflict)
}

func (e *leaseConflict) Unwrap() error { return ErrLeaseConflict }

// Take takes the lease at counter, as the KCL's takeLease does: the
// condition is the counter alone, and a KCL 3.x hand-off in progress is
// ended. When the lease changes hands from another worker its owner
// switches are counted: the first attempt expects no other owner, and only
// when that fails does a second count the switch, both at the same counter.
func (s *DynamoDBStore) Take(ctx context.Context, key, owner string, counter uint64) (Lease, error) {
	if owner == "" {
		return Lease{}, errors.New("consumer: take: empty owner")
	}
	l, err := s.take(ctx, key, owner, counter, "#n = :n AND (attribute_not_exists(#o) OR #o = :o)", 0)
	var lc *leaseConflict
	if errors.As(err, &lc) && lc.now.Counter == counter && lc.now.Owner != owner {
		return s.take(ctx, key, owner, counter, "#n = :n", 1)
	}
	return l, err
}

func (s *DynamoDBStore) take(ctx context.Context, key, owner string, counter uint64, cond string, switches uint64) (Lease, error) {
	return s.update(ctx, "take", key, &dynamodb.UpdateItemInput{
		UpdateExpression:         aws.String("SET #o = :o, #n = :next, #s = if_not_exists(#s, :zero) + :switch REMOVE #co"),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: map[string]string{"#o": attrOwner, "#n": attrCounter, "#s": attrSwitches, "#co": attrCheckpointOwn},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":o": &ddb.AttributeValueMemberS{Value: owner}, ":n": num(counter), ":next": num(counter + 1),
			":zero": num(0), ":switch": num(switches),
		},
	})
}

// Release gives up the lease, as the KCL's evictLease does (the owner
// must match and the item exist), and, like every change of this store,
// only at the counter the caller names.
func (s *DynamoDBStore) Release(ctx context.Context, key, owner string, counter uint64) (Lease, error) {
	return s.update(ctx, "release", key, &dynamodb.UpdateItemInput{
		UpdateExpression:         aws.String("SET #n = :next REMOVE #o, #co"),
		ConditionExpression:      aws.String("attribute_exists(#k) AND #o = :o AND #n = :n"),
		ExpressionAttributeNames: map[string]string{"#k": attrKey, "#o": attrOwner, "#n": attrCounter, "#co": attrCheckpointOwn},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":o": &ddb.AttributeValueMemberS{Value: owner}, ":n": num(counter), ":next": num(counter + 1),
		},
	})
}

// Checkpoint records seq and sub, as the KCL's checkpoint does: the
// counter (and here the owner) must match, the owner switches start again
// at 0, and a pending checkpoint of the KCL's two-phase commit is
// superseded, so it is removed.
func (s *DynamoDBStore) Checkpoint(ctx context.Context, key, owner string, counter uint64, seq string, sub uint64) (Lease, error) {
	if seq == "" {
		return Lease{}, errors.New("consumer: checkpoint: empty sequence number")
	}
	return s.update(ctx, "checkpoint", key, &dynamodb.UpdateItemInput{
		UpdateExpression:         aws.String("SET #c = :c, #sub = :sub, #s = :zero, #n = :next REMOVE #p, #psub, #pstate"),
		ConditionExpression:      aws.String("#o = :o AND #n = :n"),
		ExpressionAttributeNames: map[string]string{"#c": attrCheckpoint, "#sub": attrSubSeq, "#s": attrSwitches, "#n": attrCounter, "#o": attrOwner, "#p": attrPending, "#psub": attrPendingSub, "#pstate": attrPendingState},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":c": &ddb.AttributeValueMemberS{Value: seq}, ":sub": num(sub), ":zero": num(0),
			":o": &ddb.AttributeValueMemberS{Value: owner}, ":n": num(counter), ":next": num(counter + 1),
		},
	})
}

// Renew renews each lease with its own conditional update (the counter
// and the owner must match), as the KCL's renewLease does, several at a
// time. A lease that has moved on comes back in lost with its state now.
func (s *DynamoDBStore) Renew(ctx context.Context, owner string, leases []Lease) (renewed, lost []Lease, err error) {
	type result struct {
		l    Lease
		lost bool
		err  error
	}
	res := make([]result, len(leases))
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.o.renewers)
	for i, l := range leases {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			n, err := s.update(ctx, "renew", l.Key, &dynamodb.UpdateItemInput{
				UpdateExpression:         aws.String("SET #n = :next"),
				ConditionExpression:      aws.String("#o = :o AND #n = :n"),
				ExpressionAttributeNames: map[string]string{"#o": attrOwner, "#n": attrCounter},
				ExpressionAttributeValues: map[string]ddb.AttributeValue{
					":o": &ddb.AttributeValueMemberS{Value: owner}, ":n": num(l.Counter), ":next": num(l.Counter + 1),
				},
			})
			var lc *leaseConflict
			switch {
			case errors.As(err, &lc):
				res[i] = result{l: lc.now, lost: true}
			case errors.Is(err, ErrLeaseConflict): // the lease is gone
				res[i] = result{l: Lease{Key: l.Key}, lost: true}
			default:
				res[i] = result{l: n, err: err}
			}
		})
	}
	wg.Wait()
	for _, r := range res {
		switch {
		case r.err != nil:
			err = errors.Join(err, r.err)
		case r.lost:
			lost = append(lost, r.l)
		default:
			renewed = append(renewed, r.l)
		}
	}
	return renewed, lost, err
}
