package kpl_test

import (
	"errors"
	"fmt"

	"github.com/runnel/runnel/kpl"
)

func Example() {
	a := kpl.NewAggregator()
	var puts []kpl.Aggregate
	for i := range 3 {
		data := fmt.Appendf(nil, "event %d", i)
		err := a.Add(fmt.Sprintf("user-%d", i%2), "", data)
		if errors.Is(err, kpl.ErrFull) {
			// Put what is there and start the next aggregate.
			puts = append(puts, a.Drain())
			err = a.Add(fmt.Sprintf("user-%d", i%2), "", data)
		}
		if err != nil {
			panic(err)
		}
	}
	puts = append(puts, a.Drain())

	// Each aggregate is put with PutRecord(PartitionKey, ExplicitHashKey,
	// Data); a reader gets it back from GetRecords and expands it.
	for _, p := range puts {
		recs, _ := kpl.Deaggregate(kpl.Record{PartitionKey: p.PartitionKey, Data: p.Data})
		for _, r := range recs {
			fmt.Printf("%d %s %s\n", r.SubSequenceNumber, r.PartitionKey, r.Data)
		}
	}
	// A record that is not an aggregate comes back as it was.
	recs, aggregated := kpl.Deaggregate(kpl.Record{PartitionKey: "k", Data: []byte("plain")})
	fmt.Println(len(recs), aggregated, string(recs[0].Data))
	// Output:
	// 0 user-0 event 0
	// 1 user-1 event 1
	// 2 user-0 event 2
	// 1 false plain
}
