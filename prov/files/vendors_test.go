package files_test

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"

	"hotdesk/prov"
	"hotdesk/prov/files"
	"hotdesk/prov/render"
)

const (
	yealinkUA  = "Yealink SIP-T46U 108.86.0.20 00:15:65:00:00:01"
	yealinkMAC = "001565000001"
	ciscoUA    = "Cisco/CP-8851-3PCC-11.3.7 (00562b000001)(FCH1234ABCD)"
	ciscoMAC   = "00562b000001"
	snomUA     = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.159.12 2010.12-00004 OpenSSL 1.1.1 000413000001)"
	snomMAC    = "000413000001"
	gsUA       = "Grandstream Model HW GRP2614 SW 1.0.11.85 DevId 000b82000001"
	gsMAC      = "000b82000001"
	fanvilUA   = "Fanvil X4 2.10.2.6887 0c383e000001"
	fanvilMAC  = "0c383e000001"
)

// classLeases are leases that also know the DHCP option 60 they were asked with.
type classLeases struct {
	fakeLeases
	class map[netip.Addr]string
}

func (l classLeases) AddrToVendorClass(ip netip.Addr) (string, bool) {
	c, ok := l.class[ip]
	return c, ok
}

func uaReq(proto files.Proto, path, ua string) files.Request {
	r := fReq(proto, path)
	r.UserAgent = ua
	r.Remote = netip.MustParseAddrPort("10.1.7.7:5000") // no lease: the UA tells
	return r
}

// TestYealinkBoot: a Yealink asks for y000000000000.cfg, then <mac>.cfg;
// it gets Yealink's files, enrolled as a Yealink of its model, its
// credentials once, then only with them; TFTP carries no secret.
func TestYealinkBoot(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	body, err := f.read(t, uaReq(files.ProtoHTTP, "y000000000000.cfg", yealinkUA))
	if err != nil || !strings.HasPrefix(body, "#!version:1.0.0.1\n") || !strings.Contains(body, "sip.notify_reboot_enable = 0") {
		t.Fatalf("common file: %v\n%s", err, body)
	}
	d, err := f.st.GetDevice(ctx, yealinkMAC)
	if err != nil || d.Vendor != "yealink" || d.Model != "SIP-T46U" {
		t.Fatalf("enrolled %+v %v", d, err)
	}
	tftp, err := f.read(t, uaReq(files.ProtoTFTP, yealinkMAC+".cfg", yealinkUA))
	if err != nil || strings.Contains(tftp, d.SIPPassword) || strings.Contains(tftp, d.ProvPassword) ||
		!strings.Contains(tftp, "account.1.user_name = "+d.SIPUser) {
		t.Fatalf("TFTP device file: %v\n%s", err, tftp)
	}
	body, err = f.read(t, uaReq(files.ProtoHTTP, yealinkMAC+".cfg", yealinkUA))
	if err != nil || !strings.Contains(body, "static.auto_provision.server.password = "+d.ProvPassword) ||
		!strings.Contains(body, "account.1.password = "+d.SIPPassword) {
		t.Fatalf("first HTTP fetch lacks the credentials: %v\n%s", err, body)
	}
	if _, err := f.read(t, uaReq(files.ProtoHTTP, yealinkMAC+".cfg", yealinkUA)); !errors.Is(err, prov.ErrAuth) {
		t.Fatalf("second unauthenticated fetch: %v, want ErrAuth", err)
	}
	r := fAs(yealinkMAC, yealinkMAC+".cfg")
	r.UserAgent = yealinkUA
	if body, err = f.read(t, r); err != nil || !strings.Contains(body, "account.1.password = "+d.SIPPassword) {
		t.Fatalf("authenticated fetch: %v\n%s", err, body)
	}
	// Polycom's names mean nothing to it.
	if _, err := f.read(t, uaReq(files.ProtoHTTP, yealinkMAC+"-hotdesk.cfg", yealinkUA)); !errors.Is(err, prov.ErrNotFound) && !errors.Is(err, prov.ErrAuth) {
		t.Errorf("Polycom name for a Yealink: %v", err)
	}
}

// TestVendorNameCollision: <mac>.cfg is Polycom's boot file and Yealink's
// device file; the requesting phone's vendor decides, from its
// User-Agent or, without one, from its device record.
func TestVendorNameCollision(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	body, err := f.read(t, uaReq(files.ProtoHTTP, fMAC+".cfg", "FileTransport PolycomVVX-VVX_400-UA/6.4.0.0000"))
	if err != nil || !strings.Contains(body, "<APPLICATION") {
		t.Fatalf("Polycom boot file: %v\n%s", err, body)
	}
	if _, err := f.read(t, uaReq(files.ProtoHTTP, "y000000000000.cfg", yealinkUA)); err != nil {
		t.Fatal(err)
	}
	// No User-Agent (TFTP): the device record says Yealink.
	r := uaReq(files.ProtoTFTP, yealinkMAC+".cfg", "")
	if body, err = f.read(t, r); err != nil || !strings.HasPrefix(body, "#!version:1.0.0.1") {
		t.Fatalf("Yealink by record: %v\n%s", err, body)
	}
	r = uaReq(files.ProtoTFTP, fMAC+".cfg", "")
	if body, err = f.read(t, r); err != nil || !strings.Contains(body, "<APPLICATION") {
		t.Fatalf("Polycom by record: %v\n%s", err, body)
	}
}

// TestVendorDetectionOrder: User-Agent, DHCP option 60, the name asked
// for, the MAC prefix last; an unknown model gets its vendor's profile.
func TestVendorDetectionOrder(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	// A Polycom MAC prefix asking for Yealink's common file, no UA: the
	// name wins over the prefix.
	if _, err := f.read(t, fReq(files.ProtoTFTP, "y000000000000.cfg")); err != nil {
		t.Fatal(err)
	}
	if d, err := f.st.GetDevice(ctx, fMAC); err != nil || d.Vendor != "yealink" {
		t.Fatalf("by file name: %+v %v", d, err)
	}
	// Cisco MPP: $PSN.xml of a model nobody listed, MAC in the UA.
	body, err := f.read(t, uaReq(files.ProtoHTTP, "6899.xml", strings.Replace(ciscoUA, "8851", "6899", 1)))
	if err != nil || !strings.Contains(body, "<flat-profile>") || !strings.Contains(body, "<Resync_From_SIP ua=\"na\">Yes<") {
		t.Fatalf("Cisco generic profile: %v\n%s", err, body)
	}
	d, err := f.st.GetDevice(ctx, ciscoMAC)
	if err != nil || d.Vendor != "cisco" || d.Model != "CP-6899-3PCC" {
		t.Fatalf("Cisco enrolled %+v %v", d, err)
	}
	if !strings.Contains(body, "<Password_1_ ua=\"na\">"+d.SIPPassword+"<") ||
		!strings.Contains(body, "--pwd "+d.ProvPassword+"]") {
		t.Errorf("Cisco first fetch lacks its credentials:\n%s", body)
	}
}

// TestVendorByDHCPClass: a phone that sends no User-Agent (TFTP) is known
// by its lease's option 60 before its MAC prefix: a Polycom-prefix MAC
// whose lease says Yealink asks for <mac>.cfg and gets Yealink's file.
func TestVendorByDHCPClass(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ip := netip.MustParseAddr(fPhoneIP)
	leases := classLeases{fakeLeases{ip: fMAC}, map[netip.Addr]string{ip: "yealink"}}
	rend, err := render.New(render.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := files.New(files.Config{HTTPPort: 80}, files.Deps{Store: f.st, Renderer: rend, Leases: leases})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	c, err := fs.Read(context.Background(), fReq(files.ProtoTFTP, fMAC+".cfg"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c.Body)
	c.Close()
	if !strings.HasPrefix(string(b), "#!version:1.0.0.1") {
		t.Fatalf("not Yealink's file:\n%s", b)
	}
	if d, err := f.st.GetDevice(context.Background(), fMAC); err != nil || d.Vendor != "yealink" {
		t.Fatalf("by option 60: %+v %v", d, err)
	}
}

// TestVendorParams: raw overrides "<vendor>:<name>" are checked against
// that vendor's parameter list; Polycom's keep their bare names.
func TestVendorParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"up.backlight.idleIntensity", true},
		{"yealink:features.dnd.enable", true},
		{"cisco:Call_Waiting_Serv", true},
		{"yealink:nonsense", false},
		{"cisco:not a name", false},
		{"acme:x.y", false},
		{"Yealink:features.dnd.enable", false},
		{"bogus.x", false},
	} {
		m := map[string]string{tc.name: "1"}
		err := prov.ValidateParams("params", m, false)
		if err == nil {
			err = prov.CheckVendorParams(render.Catalog{}, "params", m)
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, prov.ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", tc.name, err)
		}
	}
}

// TestKVUploadRefusal: a key = value phone owns its preferences, never a
// secret, an address, its lines or its provisioning set-up.
func TestKVUploadRefusal(t *testing.T) {
	for name, want := range map[string]string{
		"features.dnd.enable":                 "",
		"lang.gui":                            "",
		"linekey.3.label":                     "",
		"account.1.password":                  files.RefusedSecret,
		"account.1.user_name":                 files.RefusedSecret,
		"account.1.label":                     files.RefusedProvisioning,
		"static.auto_provision.server.url":    files.RefusedProvisioning,
		"phone_setting.phone_lock.enable":     files.RefusedNotPhoneOwned,
		"phone_setting.emergency.number":      files.RefusedNotPhoneOwned,
		"phone_setting.phone_lock.unlock_pin": files.RefusedSecret,
		"remote_phonebook.data.1.url":         files.RefusedAddress,
		"sip.notify_reboot_enable":            files.RefusedNotPhoneOwned,
		"features.action_uri_limit_ip":        files.RefusedAddress,
	} {
		if got := files.KVUploadRefusal(name); got != want {
			t.Errorf("KVUploadRefusal(%q) = %q, want %q", name, got, want)
		}
	}
	up, err := files.SplitKVUpload([]byte("#!version:1.0.0.1\nfeatures.dnd.enable = 1\naccount.1.password = x\n"))
	if err != nil || up.Params["features.dnd.enable"] != "1" || len(up.Refused) != 1 || strings.Contains(string(up.Data), "password") {
		t.Fatalf("SplitKVUpload = %+v %v", up, err)
	}
	if _, err := files.SplitKVUpload([]byte("no equals sign\n")); !errors.Is(err, files.ErrMalformed) {
		t.Fatalf("malformed: %v", err)
	}
}

// TestCiscoTFTPHandOff: a Cisco MPP that asks for $PSN.xml over TFTP (its
// factory Profile_Rule) is known by its lease and moved to HTTP with a
// Profile_Rule that carries no credentials; over HTTP it gets them once.
func TestCiscoTFTPHandOff(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	body, err := f.read(t, fReq(files.ProtoTFTP, "8851.xml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.st.GetDevice(context.Background(), fMAC)
	if err != nil || d.Vendor != "cisco" {
		t.Fatalf("enrolled %+v %v", d, err)
	}
	if !strings.Contains(body, "<Profile_Rule ua=\"na\">http://"+fServerIP+"/$MA.xml</Profile_Rule>") ||
		strings.Contains(body, d.ProvPassword) || strings.Contains(body, d.SIPPassword) {
		t.Fatalf("TFTP profile:\n%s", body)
	}
	body, err = f.read(t, fReq(files.ProtoHTTP, fMAC+".xml"))
	if err != nil || !strings.Contains(body, "--pwd "+d.ProvPassword+"]") {
		t.Fatalf("HTTP profile: %v\n%s", err, body)
	}
}

func TestSnomBoot(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	body, err := f.read(t, uaReq(files.ProtoHTTP, "snomD785.htm", snomUA))
	if err != nil || !strings.Contains(body, "<settings>") || strings.Contains(body, "user_pass") || strings.Contains(body, "@") {
		t.Fatalf("per-model file: %v\n%s", err, body)
	}
	d, err := f.st.GetDevice(ctx, snomMAC)
	if err != nil || d.Vendor != "snom" || d.Model != "D785" || d.Firmware != "10.1.159.12" {
		t.Fatalf("enrolled %+v %v", d, err)
	}
	tftp, err := f.read(t, uaReq(files.ProtoTFTP, "snomD785-"+strings.ToUpper(snomMAC)+".htm", snomUA))
	if err != nil || strings.Contains(tftp, d.SIPPassword) || strings.Contains(tftp, d.ProvPassword) ||
		strings.Contains(tftp, "setting_server") || !strings.Contains(tftp, `<user_name idx="1" perm="R">`+d.SIPUser+"<") {
		t.Fatalf("TFTP device file: %v\n%s", err, tftp)
	}
	body, err = f.read(t, uaReq(files.ProtoHTTP, "snomD785-"+strings.ToUpper(snomMAC)+".htm", snomUA))
	if err != nil || !strings.Contains(body, ":"+d.ProvPassword+"@") ||
		!strings.Contains(body, `<user_pass idx="1" perm="R">`+d.SIPPassword+"<") {
		t.Fatalf("first HTTP fetch lacks the credentials: %v\n%s", err, body)
	}
	if _, err := f.read(t, uaReq(files.ProtoHTTP, strings.ToUpper(snomMAC)+".xml", snomUA)); !errors.Is(err, prov.ErrAuth) {
		t.Fatalf("second unauthenticated fetch: %v, want ErrAuth", err)
	}
	r := fAs(snomMAC, strings.ToUpper(snomMAC)+".xml")
	r.UserAgent = snomUA
	if body, err = f.read(t, r); err != nil || !strings.Contains(body, "<settings>") ||
		!strings.Contains(body, `<user_pass idx="1" perm="R">`+d.SIPPassword+"<") {
		t.Fatalf("authenticated <MAC>.xml: %v\n%s", err, body)
	}
	// A model nobody listed gets the generic per-model file.
	if body, err = f.read(t, uaReq(files.ProtoHTTP, "snomX999.htm", strings.NewReplacer("D785", "X999", snomMAC, "000413000002").Replace(snomUA))); err != nil ||
		!strings.Contains(body, "<setting_server") {
		t.Fatalf("unknown model: %v\n%s", err, body)
	}
	if got := files.VendorFromClass("snomD785"); got != "snom" {
		t.Errorf("option 60 snomD785 = %q", got)
	}
}

func TestGrandstreamBoot(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	if _, err := f.read(t, uaReq(files.ProtoHTTP, "cfg"+gsMAC, gsUA)); !errors.Is(err, prov.ErrNotFound) && !errors.Is(err, files.ErrBadName) {
		t.Fatalf("binary cfg<mac>: %v, want not found", err)
	}
	for _, name := range []string{"cfggrp2614.xml", "cfg.xml"} {
		body, err := f.read(t, uaReq(files.ProtoHTTP, name, gsUA))
		if err != nil || !strings.Contains(body, "<gs_provision") || strings.Contains(body, "<P34>") || strings.Contains(body, "<P1361>") {
			t.Fatalf("%s: %v\n%s", name, err, body)
		}
	}
	d, err := f.st.GetDevice(ctx, gsMAC)
	if err != nil || d.Vendor != "grandstream" || d.Model != "GRP2614" || d.Firmware != "1.0.11.85" {
		t.Fatalf("enrolled %+v %v", d, err)
	}
	tftp, err := f.read(t, uaReq(files.ProtoTFTP, "cfg"+gsMAC+".xml", gsUA))
	if err != nil || strings.Contains(tftp, d.SIPPassword) || strings.Contains(tftp, d.ProvPassword) ||
		!strings.Contains(tftp, "<P35>"+d.SIPUser+"</P35>") {
		t.Fatalf("TFTP device file: %v\n%s", err, tftp)
	}
	body, err := f.read(t, uaReq(files.ProtoHTTP, "cfg"+strings.ToUpper(gsMAC)+".xml", gsUA))
	if err != nil || !strings.Contains(body, "<P1361>"+d.ProvPassword+"</P1361>") || !strings.Contains(body, "<P34>"+d.SIPPassword+"</P34>") ||
		!strings.Contains(body, "<P81>0</P81>") {
		t.Fatalf("first HTTP fetch: %v\n%s", err, body)
	}
	if _, err := f.read(t, uaReq(files.ProtoHTTP, "cfg"+gsMAC+".xml", gsUA)); !errors.Is(err, prov.ErrAuth) {
		t.Fatalf("second unauthenticated fetch: %v, want ErrAuth", err)
	}
	r := fAs(gsMAC, "cfg"+gsMAC+".xml")
	r.UserAgent = gsUA
	if body, err = f.read(t, r); err != nil || !strings.Contains(body, "<P34>"+d.SIPPassword+"</P34>") {
		t.Fatalf("authenticated fetch: %v\n%s", err, body)
	}
	if got := files.VendorFromClass("Grandstream GXP2170 dslforum.org"); got != "grandstream" {
		t.Errorf("option 60 = %q", got)
	}
}

func TestFanvilBoot(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	body, err := f.read(t, uaReq(files.ProtoHTTP, "f0X4hw1.100.cfg", fanvilUA))
	if err != nil || !strings.Contains(body, "<sysConf>") || strings.Contains(body, "Pswd") || strings.Contains(body, "DefaultPassword") {
		t.Fatalf("common file: %v\n%s", err, body)
	}
	d, err := f.st.GetDevice(ctx, fanvilMAC)
	if err != nil || d.Vendor != "fanvil" || d.Model != "X4" || d.Firmware != "2.10.2.6887" {
		t.Fatalf("enrolled %+v %v", d, err)
	}
	tftp, err := f.read(t, uaReq(files.ProtoTFTP, fanvilMAC+".cfg", fanvilUA))
	if err != nil || strings.Contains(tftp, d.SIPPassword) || strings.Contains(tftp, d.ProvPassword) ||
		!strings.Contains(tftp, "<PhoneNumber>"+d.SIPUser+"</PhoneNumber>") {
		t.Fatalf("TFTP device file: %v\n%s", err, tftp)
	}
	body, err = f.read(t, uaReq(files.ProtoHTTP, fanvilMAC+".cfg", fanvilUA))
	if err != nil || !strings.Contains(body, "<DefaultPassword>"+d.ProvPassword+"</DefaultPassword>") ||
		!strings.Contains(body, "<RegisterPswd>"+d.SIPPassword+"</RegisterPswd>") {
		t.Fatalf("first HTTP fetch: %v\n%s", err, body)
	}
	if _, err := f.read(t, uaReq(files.ProtoHTTP, fanvilMAC+".cfg", fanvilUA)); !errors.Is(err, prov.ErrAuth) {
		t.Fatalf("second unauthenticated fetch: %v, want ErrAuth", err)
	}
	r := fAs(fanvilMAC, fanvilMAC+".cfg")
	r.UserAgent = fanvilUA
	if body, err = f.read(t, r); err != nil || !strings.Contains(body, "<RegisterPswd>"+d.SIPPassword+"</RegisterPswd>") {
		t.Fatalf("authenticated fetch: %v\n%s", err, body)
	}
	other := strings.NewReplacer("X4 ", "X9Z ", fanvilMAC, "0c383e000002").Replace(fanvilUA)
	if body, err = f.read(t, uaReq(files.ProtoHTTP, "F0V00X9Z0000.cfg", other)); err != nil || !strings.Contains(body, "<FlashServerIP>") {
		t.Fatalf("unknown model: %v\n%s", err, body)
	}
	if got := files.VendorFromClass("Fanvil X4"); got != "fanvil" {
		t.Errorf("option 60 = %q", got)
	}
	if got := prov.VendorFromMAC("0c383e123456"); got != "fanvil" {
		t.Errorf("OUI = %q", got)
	}
}

func TestVendorByDHCPClassPerVendor(t *testing.T) {
	for _, tc := range []struct{ class, name, want, vendor string }{
		{"snomD785", fMAC + ".xml", "<settings>", "snom"},
		{"Grandstream GXP2170 dslforum.org", "cfg" + fMAC + ".xml", "<gs_provision", "grandstream"},
		{"Fanvil X4", fMAC + ".cfg", "<sysConf>", "fanvil"},
	} {
		t.Run(tc.vendor, func(t *testing.T) {
			f := newFilesFixture(t, files.Config{})
			ip := netip.MustParseAddr(fPhoneIP)
			leases := classLeases{fakeLeases{ip: fMAC}, map[netip.Addr]string{ip: tc.class}}
			rend, err := render.New(render.Config{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			fs, err := files.New(files.Config{HTTPPort: 80}, files.Deps{Store: f.st, Renderer: rend, Leases: leases})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fs.Close() })
			c, err := fs.Read(context.Background(), fReq(files.ProtoTFTP, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(c.Body)
			c.Close()
			if !strings.Contains(string(b), tc.want) {
				t.Fatalf("not %s's file:\n%s", tc.vendor, b)
			}
			if d, err := f.st.GetDevice(context.Background(), fMAC); err != nil || d.Vendor != tc.vendor {
				t.Fatalf("by option 60: %+v %v", d, err)
			}
		})
	}
}
