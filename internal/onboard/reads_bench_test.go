package onboard_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/cloud/cloudtest"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
)

const (
	benchCrowd       = 20_000 // users and projects already in the domain
	benchFewGoal     = 5      // Keystone reads for 1 new row, at most
	benchManyRows    = 500
	benchManyPerGoal = 1.0 // Keystone reads per row for 500 new rows, at most
)

// BenchmarkImportReads imports new rows into a domain that already holds
// 20,000 users and 20,000 projects, on the in-memory Keystone of cloudtest
// behind a read counter (creating 20,000 of each on the dev Keystone would
// take far longer than the benchmark; the fake answers the same requests,
// as its conformance suite holds it to). It reports and asserts:
//
//   - few: 1 new row costs at most 5 Keystone reads (its names are looked
//     up, not the domain listed);
//   - many: 500 new rows cost at most 1 read per row (the domain is listed
//     once).
func BenchmarkImportReads(b *testing.B) {
	f := cloudtest.New()
	ctx := b.Context()
	d, err := f.CreateDomain(ctx, "kzt-crowded", "")
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchCrowd {
		if _, err := f.CreateUser(ctx, cloud.NewUser{DomainID: d.ID, Name: fmt.Sprintf("user%05d@example.org", i)}); err != nil {
			b.Fatal(err)
		}
		if _, err := f.CreateProject(ctx, cloud.NewProject{DomainID: d.ID, Name: fmt.Sprintf("project%05d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name    string
		rows    int
		metric  string
		perRow  bool
		maximum float64
	}{
		{"few", 1, "reads", false, benchFewGoal},
		{"many", benchManyRows, "reads/row", true, benchManyPerGoal},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var reads float64
			n := 0
			for b.Loop() {
				n++
				reads = float64(benchReadsOnce(b, f, d, bc.rows, fmt.Sprintf("%s%d", bc.name, n)))
			}
			if bc.perRow {
				reads /= float64(bc.rows)
			}
			b.ReportMetric(reads, bc.metric)
			if reads > bc.maximum {
				b.Errorf("%d new rows into a domain of %d users and projects: %.2f %s, want at most %.0f", bc.rows, benchCrowd, reads, bc.metric, bc.maximum)
			}
		})
	}
}

// benchReadsOnce imports rows new requests (names starting with prefix) and returns the Keystone reads the import made.
func benchReadsOnce(b *testing.B, f *cloudtest.Fake, d cloud.Domain, rows int, prefix string) int64 {
	b.StopTimer()
	e := newSeamEnv(b, seamBackend{name: "bench", shared: f, domain: d})
	var grid []formRow
	for i := range rows {
		grid = append(grid, row(fmt.Sprintf("%s-%d@example.org", prefix, i), fmt.Sprintf("%s-%d", prefix, i),
			cols.Timestamp, fmt.Sprintf("3/14/2026 14:%02d:%02d", i/60%60, i%60)))
	}
	e.write(grid...)
	e.count.reset()
	b.StartTimer()
	sum, err := onboard.Run(context.WithoutCancel(b.Context()), e.deps(), e.opts)
	if err != nil {
		b.Fatalf("import: %v", err)
	}
	if sum.Counts[string(onboard.Created)] != rows {
		for _, r := range sum.Rows {
			if r.Outcome != onboard.Created {
				b.Logf("row %+v", r)
			}
		}
		b.Fatalf("import: %v, want %d created", sum.Counts, rows)
	}
	return e.count.reads.Load()
}
