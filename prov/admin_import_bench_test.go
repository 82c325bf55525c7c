package prov_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/auth"
	"hotdesk/prov/store"
)

// importFile is n rows with numbers and no passwords: the shape of a
// directory export, where users set their password later.
func importFile(n int) []byte {
	var b bytes.Buffer
	b.WriteString("username,first_name,last_name,email,numbers,custom1\n")
	for i := range n {
		fmt.Fprintf(&b, "user%05d,First %d,\"Last, %d\",user%05d@example.test,%d,Dept %d\n", i, i, i, i, 100000+i, i%17)
	}
	return b.Bytes()
}

func openStore(tb testing.TB) *store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), store.DefaultConfig(), tb.TempDir(), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// BenchmarkImport10k imports 10,000 rows into a fresh SQLite store:
// go test -run '^$' -bench Import10k -benchtime 3x ./prov/
func BenchmarkImport10k(b *testing.B) {
	data := importFile(10000)
	for b.Loop() {
		b.StopTimer()
		st := openStore(b)
		dir := prov.NewDirectory(st, &prov.Events{}, time.Now)
		b.StartTimer()
		rep, err := prov.ImportUsersCSV(context.Background(), dir, bytes.NewReader(data), prov.ImportOptions{})
		if err != nil || rep.Created != 10000 {
			b.Fatalf("created %d refused %d: %v", rep.Created, rep.Refused, err)
		}
	}
}

// BenchmarkImport10kPasswordHash imports 10,000 rows that each carry an
// argon2id hash from another system (password_hash): checked, not hashed.
//
//	go test -run '^$' -bench Import10kPasswordHash -benchtime 3x ./prov/
func BenchmarkImport10kPasswordHash(b *testing.B) {
	hash, err := auth.HashPassword("migrated", auth.DefaultArgon2)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	buf.WriteString("username,first_name,last_name,email,numbers,password_hash\n")
	for i := range 10000 {
		fmt.Fprintf(&buf, "user%05d,First %d,Last %d,user%05d@example.test,%d,\"%s\"\n", i, i, i, i, 100000+i, hash)
	}
	for b.Loop() {
		b.StopTimer()
		st := openStore(b)
		dir := prov.NewDirectory(st, &prov.Events{}, time.Now)
		b.StartTimer()
		rep, err := prov.ImportUsersCSV(context.Background(), dir, bytes.NewReader(buf.Bytes()), prov.ImportOptions{})
		if err != nil || rep.Created != 10000 {
			b.Fatalf("created %d refused %d: %v %+v", rep.Created, rep.Refused, err, rep.Results[0])
		}
	}
}

// BenchmarkImportPasswords200 imports 200 rows that each carry a password:
// argon2id dominates, spread over GOMAXPROCS workers. core-ms/row is the
// cost of one row on one core, and s/10k-rows what 10,000 such rows take
// on this machine's cores.
func BenchmarkImportPasswords200(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("username,first_name,last_name,email,password\n")
	for i := range 200 {
		fmt.Fprintf(&buf, "p%03d,F,L,p%03d@example.test,secret-%d\n", i, i, i)
	}
	for b.Loop() {
		b.StopTimer()
		st := openStore(b)
		dir := prov.NewDirectory(st, &prov.Events{}, time.Now)
		b.StartTimer()
		rep, err := prov.ImportUsersCSV(context.Background(), dir, bytes.NewReader(buf.Bytes()), prov.ImportOptions{})
		if err != nil || rep.Created != 200 {
			b.Fatalf("created %d: %v", rep.Created, err)
		}
	}
	perRow := b.Elapsed().Seconds() / float64(b.N*200)
	b.ReportMetric(1000*perRow*float64(runtime.GOMAXPROCS(0)), "core-ms/row")
	b.ReportMetric(perRow*10000, "s/10k-rows")
}
