package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"hotdesk/prov"
)

// benchUser looks like an imported user: hashes, HA1s, portal and call
// handling set, no per-user params.
func benchUser(i int) prov.User {
	return prov.User{
		Username: fmt.Sprintf("user%05d", i), FirstName: "First", LastName: fmt.Sprintf("Last%05d", i),
		Email: fmt.Sprintf("user%05d@example.com", i), Language: "en", Kind: prov.KindPerson, Status: prov.StatusActive,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		LoginHA1:     map[string]string{"MD5": "0123456789abcdef0123456789abcdef", "SHA-256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		SIPPassword:  "Sip-Secret-0123456789",
		Portal:       prov.PortalAccess{Enabled: true, Profile: prov.AccessWrite, CallHandling: prov.AccessWrite},
		CallHandling: prov.CallHandling{NoAnswerSeconds: 20},
	}
}

func importUsers(ctx context.Context, s *Store, n int) error {
	return s.WithTx(ctx, func(tx prov.Store) error {
		for i := range n {
			u := benchUser(i)
			if err := tx.CreateUser(ctx, &u); err != nil {
				return err
			}
			if err := tx.AssignNumber(ctx, fmt.Sprint(10000+i), u.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

func importDevices(ctx context.Context, s *Store, n int) error {
	return s.WithTx(ctx, func(tx prov.Store) error {
		for i := range n {
			d := prov.Device{MAC: fmt.Sprintf("0004f2%06x", i), Vendor: "Polycom", Model: "VVX 450",
				Kind: prov.DeviceManaged, Status: prov.DeviceDeployed, AssignedUserID: int64(i + 1),
				ProvUser: "PlcmSpIp", ProvPassword: "secret", SIPUser: fmt.Sprintf("dev%05d", i), SIPPassword: "x",
				LastSeen: time.Now(), LastIP: "10.0.0.1"}
			if err := tx.CreateDevice(ctx, &d); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkOpenWith10kUsersDevices is the daemon's start-up load: open,
// then read every user, device and number into memory.
func BenchmarkOpenWith10kUsersDevices(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	s := open(b, dir)
	must(b, importUsers(ctx, s, 10000))
	must(b, importDevices(ctx, s, 10000))
	must(b, s.Close())
	for b.Loop() {
		s := open(b, dir)
		users, _, err := s.ListUsers(ctx, prov.UserQuery{})
		must(b, err)
		devices, _, err := s.ListDevices(ctx, prov.DeviceQuery{})
		must(b, err)
		nums, err := s.AllNumbers(ctx)
		must(b, err)
		if len(users) != 10000 || len(devices) != 10000 || len(nums) != 10000 {
			b.Fatalf("loaded %d users, %d devices, %d numbers", len(users), len(devices), len(nums))
		}
		must(b, s.Close())
	}
}

// BenchmarkImport10kUsers is a CSV import: 10,000 users and their numbers
// in one transaction (password hashing excluded).
func BenchmarkImport10kUsers(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		s := open(b, b.TempDir())
		b.StartTimer()
		must(b, importUsers(ctx, s, 10000))
		b.StopTimer()
		must(b, s.Close())
		b.StartTimer()
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "users/s")
}

// BenchmarkSaveBindings is one registrar write-behind batch of 1,000
// refreshes over a table of 10,000 bindings.
func BenchmarkSaveBindings(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	defer s.Close()
	const total, batch = 10000, 1000
	bs := make([]prov.Binding, total)
	for i := range bs {
		bs[i] = prov.Binding{AOR: fmt.Sprintf("sip:%05d@hq.example", i), Contact: fmt.Sprintf("sip:%05d@10.0.%d.%d:5060", i, i/250, i%250),
			Instance: "<urn:uuid:00000000-0000-0000-0000-000000000000>", CallID: "abcdef0123456789@10.0.0.1",
			Expires: time.Now().Add(time.Hour), Q: 1, Source: "udp:10.0.0.1:5060", Transport: "udp",
			UserAgent: "PolycomVVX-VVX_450-UA/6.4.0.1234", Owner: prov.DeviceOwner(1), Node: "n1"}
	}
	must(b, s.SaveBindings(ctx, bs, nil))
	i := 0
	for b.Loop() {
		off := (i * batch) % total
		chunk := bs[off : off+batch]
		for j := range chunk {
			chunk[j].CSeq++
		}
		must(b, s.SaveBindings(ctx, chunk, nil))
		i++
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
}
