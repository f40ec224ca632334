package kpl

import (
	"fmt"
	"testing"
)

var benchCases = []struct {
	name          string
	records, size int
}{
	{"1000 x 100 B", 1000, 100},
	{"100 x 10 KiB", 100, 10 << 10},
}

func BenchmarkAggregate(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			data := make([]byte, bc.size)
			keys := make([]string, 50)
			for i := range keys {
				keys[i] = fmt.Sprint("partition-key-", i)
			}
			a := NewAggregator()
			b.SetBytes(int64(bc.records * bc.size))
			b.ReportAllocs()
			for b.Loop() {
				for i := range bc.records {
					if err := a.Add(keys[i%len(keys)], "", data); err != nil {
						b.Fatal(err)
					}
				}
				if agg := a.Drain(); agg.Records != bc.records {
					b.Fatal(agg.Records)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			a := NewAggregator()
			for i := range bc.records {
				a.add(fmt.Sprint("partition-key-", i%50), "", make([]byte, bc.size))
			}
			agg := a.Drain()
			b.SetBytes(int64(len(agg.Data)))
			b.ReportAllocs()
			for b.Loop() {
				if recs, err := Decode(agg.Data); err != nil || len(recs) != bc.records {
					b.Fatal(err)
				}
			}
		})
	}
}
