package modem

import (
	"bytes"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

// Recorded WAP pushes. The expected values in the tests below were decoded
// by hand from these bytes per WAP-230-WSP and OMA-MMS-ENC, or are the
// source's own expected output where it has one (MuditaOS).

// wapPlusPDUs are the two SMS-DELIVER PDUs of one MMS notification from the
// Polish operator Plus (SMSC +48602006031), as a modem printed them: the
// strings sms2 and sms3 of a public GitHub Python script that forwards SMS
// to e-mail with smspdu.easy (module docstring "Module responsible for
// decoding sms in PDU format and forwarding it to e-mail address"; the
// search index gave its file, id 42055940462, but not its repository name).
var wapPlusPDUs = []string{
	"07918406026030F14006D0CDE61400F502107191142340820B05040B8423F000031A02010006291F226170706C69636174696F6E2F" +
		"766E642E7761702E6D6D732D6D657373616765008184AF848D01008C82983174696434383630383339343935335F30377967673834" +
		"627068008D918918802B34383537323239323733362F545950453D504C4D4E00966E6F207375626A656374008A808E03",
	"07918406026030F14406D0CDE61400F5021071911423405D0B05040B8423F000031A020203067188048102A8BE83687474703A2F2F" +
		"31302E37342E3138332E35352F6D6D732F776170656E633F6C6F636174696F6E3D34383630383339343935335F3037796767383462" +
		"7068267269643D31333700",
}

// wapGammu40 is the +CMGR answer of gammu/gammu tests/at-sms/40.dump
// (commit 78fd6a92): the message of gammu issue 300 below as a whole
// SMS-DELIVER, sender number mangled. gammu's tests/CMakeLists.txt expects
// MMS_SENDER=+33333493211/TYPE=PLMN, MMS_TITLE="", MMS_ADDRESS=
// http://mts/?id=81460494, MMS_SIZE=96857.
const wapGammu40 = "07912374151616F6440B911174164210F000F571309290346280860605040B8423F04F06226170706C69636174696F6E2F" +
	"766E642E7761702E6D6D732D6D65737361676500AF848C82983831343630343934406D6D7331008D928918802B3333333333343933" +
	"3231312F545950453D504C4D4E0096008F8186818A808E03017A598805810303F48083687474703A2F2F6D74732F3F69643D3831" +
	"34363034393400"

// wapGammu33 is the +CMGR answer of gammu/gammu tests/at-sms/33.dump
// (commit 78fd6a92), a notification from mmsc.labmctel.fr whose From is
// malformed: 89 19 80 16 04 "33707520030/TYPE=PLMN" 00. The Char-set 04 is
// not a Short-integer (that would be 84) but a Long-integer length, and the
// Value-length 16 (22) does not cover a charset and the 22 octets of text.
// gammu skips two octets and copies the string; a decoder that follows the
// encoding cannot.
const wapGammu33 = "07913307005630F0440BA13307570230F00006017010900412806A0605040B8423F0040603BEAF848C8298313237373937" +
	"30303539008D92891980160433333730373532303033302F545950453D504C4D4E009679424F008A808E0122880481020BB8836874" +
	"74703A2F2F6D6D73632E6C61626D6374656C2E66723A393039302F6D333300"

// wapBackup is a message from a gammu SMS backup: per part, the UDH
// (with its UDHL) and the user data after it, both as recorded.
type wapBackup struct {
	name   string
	origin string
	udh    []string
	text   []string
}

var wapBackups = []wapBackup{
	{
		name:   "T-Mobile CZ",
		origin: "gammu/gammu tests/smsbackups/mms.smsbackup (commit cb1550c1)",
		udh:    []string{"0B05040B8423F00003AA0201", "0B05040B8423F00003AA0202"},
		text: []string{
			"1106246170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF84B4878C82986D3564613561396A6E3231306D61353671323040008D908919802B3432303737373737373737372F545950453D504C4D4E009641008A808E0218" +
				"1E88058103083D5F83687474703A2F2F6D6D73637A2F3F6D3D6D35",
			"64613561396A6E3231306D61353671323000",
		},
	},
	{
		name:   "T-Mobile CZ UTF-8 subject",
		origin: "gammu/gammu tests/smsbackups/mms-unicode.smsbackup (commit 2880d969)",
		udh:    []string{"0B05040B8423F000031D0201", "0B05040B8423F000031D0202"},
		text: []string{
			"4C06246170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF84B4878C82986D3564613561396A6E323168727A633964313840008D908919802B3432303737373034363533362F545950453D504C4D4E00960AEA5A6B6F75C5" +
				"A16B61008A808E02714888058103083D5F83687474703A2F2F6D6D",
			"73637A2F3F6D3D6D3564613561396A6E323168727A633964313800",
		},
	},
	{
		name:   "Orange PL",
		origin: "gammu/gammu tests/smsbackups/multipart-mms.smsbackup (commit d3822989)",
		udh:    []string{"0B000383020105040B8423F0", "0B000383020205040B8423F0"},
		text: []string{
			"01062E6170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF84B131302E36302E37372E36008C8298433154704B59493677515F4159414143417441414141426741424D54734141414141008D90890F80506F776974616C6E" +
				"79404D4D5300960FEA4F646B72796A204D4D532D6121008A808E02",
			"3E808804810205DC83687474703A2F2F6D6D733167656F2E6F72616E67652E706C3A383030322F54704B59493677515F4159414143417441414141426741424D5473414141414100",
		},
	},
}

// wapBackupsTrailing are two more gammu backups whose last part ends in
// an octet 0x0A after the last field, which is no MMS field: a decoder
// that follows the encoding rules must refuse them (gammu skips unknown
// octets one by one).
var wapBackupsTrailing = []wapBackup{
	{
		name:   "Vodafone CZ",
		origin: "gammu/gammu tests/smsbackups/mms-vodafone.smsbackup (commit ad2f89e3)",
		udh:    []string{"0B05040B8423F00003AA0201", "0B05040B8423F00003AA0202"},
		text: []string{
			"0106226170706c69636174696f6e2f766e642e7761702e6d6d732d6d65737361676500af848c82984e4f4b35446466476f5338595349494f7354674141734b7677383178534141414141414141008d908919802b3432303733393532343138382f545950453d504c4d4e0096333636353533353236008a808e027400880581",
			"03083d5c83687474703a2f2f70726f6d6d732f736572766c6574732f4e4f4b35446466476f5338595349494f7354674141734b7677383178534141414141414141000a",
		},
	},
	{
		name:   "T-Mobile CZ 2",
		origin: "gammu/gammu tests/smsbackups/mms-tmobile.smsbackup (commit ad2f89e3)",
		udh:    []string{"0B05040B8423F00003AA0201", "0B05040B8423F00003AA0202"},
		text: []string{
			"2e06246170706c69636174696f6e2f766e642e7761702e6d6d732d6d65737361676500af84b4878c82986d3564613967366c383233707072343277313840008d908919802b3432303737343731313232352f545950453d504c4d4e0096507265646d6574008a808e02714888058103083d5f83687474703a2f2f6d6d73637a",
			"2f3f6d3d6d3564613967366c3832337070723432773138000a",
		},
	},
}

// wapIssue300 is the WSP PDU of an MMS notification (Proximus/Belgium,
// "mts" MMSC) that gammu-smsd logged as a hex dump in
// https://github.com/gammu/gammu/issues/300 (2017-03-29), read from the
// dump's hex columns.
const wapIssue300 = "4F06226170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF84" +
	"8C82983831343630343934406D6D7331008D928918802B33323437363439333231312F545950453D504C4D4E00" +
	"96008F8186818A808E03017A598805810303F48083687474703A2F2F6D74732F3F69643D383134363034393400"

// wapMudita are the WSP PDUs of mudita/MuditaOS
// module-services/service-cellular/tests/unittest_Pdu.cpp (commit
// df480fb0), with the From and Content-Location that test expects.
var wapMudita = []struct {
	name, pdu, from, location string
}{
	{"Play",
		"0006226170706C69636174696F6E2F766E642E7761702E6D6D732D6D65737361676500AF848C82983132333435363738008D918A80" +
			"8E0302BF5F8805810303F47F83687474703A2F2F6D6D73632E706C61792E706C2F6D6D732F776170656E632F313233343536373800" +
			"8918802B34383938373635343332312F545950453D504C4D4E00",
		"+48987654321", "http://mmsc.play.pl/mms/wapenc/12345678"},
	{"T-Mobile",
		"C50603BEAF848C829831383261316237323931643835663230644070322E6D6D73632E742D6D6F62696C652E706C008D918A80" +
			"8E0285C288048102A8BE83687474703A2F2F31302E3234322E3234332E34303A393830302F6D6D313F69643D32323038313531" +
			"3832613162373238313932366630356262008918802B34383530353035303530352F545950453D504C4D4E009600",
		"+48505050505", "http://10.242.243.40:9800/mm1?id=220815182a1b7281926f05bb"},
	{"T-Mobile 2",
		"600603BEAF848C82983138326135373163376432353265383033644070312E6D6D73632E742D6D6F62696C652E706C008D918A" +
			"808E0302211C88058103093A7F83687474703A2F2F31302E3230352E34332E34303A393830302F6D6D313F69643D3232303831" +
			"36313832613537316335343632643638386266008918802B34383238373238373238372F545950453D504C4D4E009600",
		"+48287287287", "http://10.205.43.40:9800/mm1?id=220816182a571c5462d688bf"},
	{"Plus",
		"000607BE8DE9AF84B4808C8298303130322D67616B32346E326E643679393230008D908918802B34383738323738323738322F" +
			"545950453D504C4D4E008A808E0302211C88058103093A7E83687474703A2F2F6D6D733372783A383030322F303130322D6761" +
			"6B32346E326E64367939323000",
		"+48782782782", "http://mms3rx:8002/0102-gak24n2nd6y920"},
	{"Orange",
		"000607BEAF848DDBB4818C8298416263646566676869008D928918802B34383132333435363738392F545950453D504C4D4E008681" +
			"8A808E0285AE88048102A8BF83687474703A2F2F67656F6D323A383030322F6D6D73632F633F41626364656667686900",
		"+48123456789", "http://geom2:8002/mmsc/c?Abcdefghi"},
	{"without From",
		"000607BEAF848DDBB4818C8298416263646566676869008D9286818A808E0285AE88048102A8BF83687474703" +
			"A2F2F67656F6D323A383030322F6D6D73632F633F41626364656667686900",
		"", "http://geom2:8002/mmsc/c?Abcdefghi"},
}

func wapHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad test hex: %v", err)
	}
	return b
}

// wapDeliverUD decodes whole SMS-DELIVER PDUs the way the driver does
// (pdumode, then tpdu), checks that they are the 8-bit parts of one message
// to the WAP push port, and returns their user data reassembled.
func wapDeliverUD(t *testing.T, pdus []string) []byte {
	t.Helper()
	type part struct {
		seq int
		ud  []byte
	}
	var parts []part
	for i, s := range pdus {
		p, err := pdumode.UnmarshalHexString(s)
		if err != nil {
			t.Fatalf("part %d: pdumode: %v", i, err)
		}
		var d tpdu.TPDU
		if err := d.UnmarshalBinary(p.TPDU); err != nil {
			t.Fatalf("part %d: tpdu: %v", i, err)
		}
		if alpha, err := d.Alphabet(); err != nil || alpha != tpdu.Alpha8Bit {
			t.Fatalf("part %d: alphabet %v, %v, want 8-bit", i, alpha, err)
		}
		dst, src, ok := appPorts(d.UDH)
		if got, want := [3]any{dst, src, ok}, [3]any{2948, 9200, true}; got != want {
			t.Fatalf("part %d: appPorts = %v, want %v", i, got, want)
		}
		n, seq, _, ok := d.UDH.ConcatInfo()
		if len(pdus) == 1 && !ok {
			n, seq, ok = 1, 1, true
		}
		if !ok || n != len(pdus) {
			t.Fatalf("part %d: concat %d parts, ok %v, want %d", i, n, ok, len(pdus))
		}
		parts = append(parts, part{seq, d.UD})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].seq < parts[j].seq })
	var ud []byte
	for i, p := range parts {
		if p.seq != i+1 {
			t.Fatalf("part sequence numbers %v", parts)
		}
		ud = append(ud, p.ud...)
	}
	return ud
}

// wapBackupUD checks the UDH of each part of m and returns the user data
// reassembled.
func wapBackupUD(t *testing.T, m wapBackup) []byte {
	t.Helper()
	var ud []byte
	for i := range m.udh {
		var udh tpdu.UserDataHeader
		raw := wapHex(t, m.udh[i])
		if n, err := udh.UnmarshalBinary(raw); err != nil || n != len(raw) {
			t.Fatalf("part %d: UDH: read %d of %d, %v", i, n, len(raw), err)
		}
		dst, src, ok := appPorts(udh)
		if got, want := [3]any{dst, src, ok}, [3]any{2948, 9200, true}; got != want {
			t.Fatalf("part %d: appPorts = %v, want %v", i, got, want)
		}
		n, seq, _, ok := udh.ConcatInfo()
		if !ok || n != len(m.udh) || seq != i+1 {
			t.Fatalf("part %d: concat %d/%d, ok %v", i, seq, n, ok)
		}
		ud = append(ud, wapHex(t, m.text[i])...)
	}
	return ud
}

func wapCheckMMS(t *testing.T, got *mmsNotification, want mmsNotification) {
	t.Helper()
	if got == nil {
		t.Fatalf("MMS = nil, want %+v", want)
	}
	if !got.Expiry.At.Equal(want.Expiry.At) {
		t.Errorf("Expiry.At = %v, want %v", got.Expiry.At, want.Expiry.At)
	}
	got2 := *got
	got2.Expiry.At, want.Expiry.At = time.Time{}, time.Time{}
	if got2 != want {
		t.Errorf("MMS =\n%+v, want\n%+v", got2, want)
	}
}

func wapRelative(secs int64) mmsExpiry {
	return mmsExpiry{Relative: time.Duration(secs) * time.Second}
}

func TestDecodeWAPPushWholeSMS(t *testing.T) {
	ud := wapDeliverUD(t, wapPlusPDUs)
	p, err := decodeWAPPush(ud)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.TransactionID, byte(0x00); got != want {
		t.Errorf("TID = %#x, want %#x", got, want)
	}
	// Content-Type in the general form: 1F 22, the media as text, then the
	// parameter Charset (0x81) ISO-8859-1 (0x84).
	if got, want := p.ContentType, "application/vnd.wap.mms-message"; got != want {
		t.Errorf("ContentType = %q, want %q", got, want)
	}
	if got, want := p.ApplicationID, "x-wap-application:mms.ua"; got != want {
		t.Errorf("ApplicationID = %q, want %q", got, want)
	}
	// AF 84, then Content-Length (0x0D) as a Long-integer of 1 octet: 8D 01 00.
	if got, want := len(p.Headers), 2; got != want {
		t.Fatalf("%d headers, want %d: %+v", got, want, p.Headers)
	}
	if h := p.Headers[1]; h.Page != 1 || h.Code != 0x0D || !bytes.Equal(h.Value, []byte{0x01, 0x00}) {
		t.Errorf("header 1 = %+v, want Content-Length 01 00", h)
	}
	if got, want := len(p.Body), len(ud)-3-0x29; got != want {
		t.Errorf("body of %d octets, want %d", got, want)
	}
	wapCheckMMS(t, p.MMS, mmsNotification{
		TransactionID:   "1tid48608394953_07ygg84bph",
		Version:         "1.1",
		From:            "+48572292736",
		Subject:         "no subject",
		Class:           "personal",
		Size:            0x030671, // 8E 03 | 03 06 71: the field spans the two SMS
		Expiry:          wapRelative(0xA8BE),
		ContentLocation: "http://10.74.183.55/mms/wapenc?location=48608394953_07ygg84bph&rid=137",
	})
}

func TestDecodeWAPPushGammuAtSMS40(t *testing.T) {
	p, err := decodeWAPPush(wapDeliverUD(t, []string{wapGammu40}))
	if err != nil {
		t.Fatal(err)
	}
	wapCheckMMS(t, p.MMS, mmsNotification{
		TransactionID: "81460494@mms1", Version: "1.2", From: "+33333493211", Subject: "",
		Class: "personal", Size: 96857, Expiry: wapRelative(0x03F480),
		ContentLocation: "http://mts/?id=81460494",
	})
}

func TestDecodeWAPPushGammuAtSMS33(t *testing.T) {
	// UD: 04 06 03 BE AF 84, then 8C 82 at 6, 98 "1277970059" 00 at 8, 8D 92
	// at 20, 89 19 80 at 22. The Encoded-string-value's length 22 at 25
	// covers 26 to 47; its Char-set at 26 reads as a Long-integer of 4
	// octets, so the text starts at 31 and its end-of-string, at 48, is
	// outside the value.
	_, err := decodeWAPPush(wapDeliverUD(t, []string{wapGammu33}))
	if err == nil {
		t.Fatal("no error for the malformed From")
	}
	if got, want := err.Error(), "cannot decode WAP push: MMS notification: From at offset 31: truncated: text has no end-of-string"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestDecodeWAPPushGammuBackups(t *testing.T) {
	want := map[string]struct {
		tid     byte
		headers int
		mms     mmsNotification
	}{
		"T-Mobile CZ": {0x11, 2, mmsNotification{
			TransactionID: "m5da5a9jn210ma56q20@", Version: "1.0", From: "+420777777777", Subject: "A",
			Class: "personal", Size: 0x181E, Expiry: wapRelative(0x083D5F),
			ContentLocation: "http://mmscz/?m=m5da5a9jn210ma56q20"}},
		"T-Mobile CZ UTF-8 subject": {0x4C, 2, mmsNotification{
			TransactionID: "m5da5a9jn21hrzc9d18@", Version: "1.0", From: "+420777046536",
			Subject: "Zkou\u0161ka", // 96 0A EA ...: value length 10, charset UTF-8
			Class:   "personal", Size: 0x7148, Expiry: wapRelative(0x083D5F),
			ContentLocation: "http://mmscz/?m=m5da5a9jn21hrzc9d18"}},
		"Orange PL": {0x01, 2, mmsNotification{
			TransactionID: "C1TpKYI6wQ_AYAACAtAAAABgABMTsAAAAA", Version: "1.0",
			From: "Powitalny@MMS", Subject: "Odkryj MMS-a!",
			Class: "personal", Size: 0x3E80, Expiry: wapRelative(0x05DC),
			ContentLocation: "http://mms1geo.orange.pl:8002/TpKYI6wQ_AYAACAtAAAABgABMTsAAAAA"}},
	}
	for _, m := range wapBackups {
		t.Run(m.name, func(t *testing.T) {
			w := want[m.name]
			p, err := decodeWAPPush(wapBackupUD(t, m))
			if err != nil {
				t.Fatal(err)
			}
			if p.TransactionID != w.tid || p.ContentType != mmsContentType ||
				p.ApplicationID != "x-wap-application:mms.ua" || len(p.Headers) != w.headers {
				t.Errorf("push = TID %#x, %q, %q, %d headers; want %#x, MMS, mms.ua, %d",
					p.TransactionID, p.ContentType, p.ApplicationID, len(p.Headers), w.tid, w.headers)
			}
			wapCheckMMS(t, p.MMS, w.mms)
		})
	}
}

func TestDecodeWAPPushGammuInitiatorURI(t *testing.T) {
	// Orange PL: after AF 84 comes B1 "10.60.77.6": X-Wap-Initiator-URI (0x31).
	p, err := decodeWAPPush(wapBackupUD(t, wapBackups[2]))
	if err != nil {
		t.Fatal(err)
	}
	h := p.Headers[1]
	if h.Code != 0x31 || string(h.Value) != "10.60.77.6\x00" {
		t.Errorf("header 1 = %+v, want X-Wap-Initiator-URI 10.60.77.6", h)
	}
}

func TestDecodeWAPPushTrailingOctet(t *testing.T) {
	want := map[string]mmsNotification{
		"Vodafone CZ": {
			TransactionID: "NOK5DdfGoS8YSIIOsTgAAsKvw81xSAAAAAAAA", Version: "1.0", From: "+420739524188",
			Subject: "366553526", Class: "personal", Size: 0x7400, Expiry: wapRelative(0x083D5C),
			ContentLocation: "http://promms/servlets/NOK5DdfGoS8YSIIOsTgAAsKvw81xSAAAAAAAA"},
		"T-Mobile CZ 2": {
			TransactionID: "m5da9g6l823ppr42w18@", Version: "1.0", From: "+420774711225",
			Subject: "Predmet", Class: "personal", Size: 0x7148, Expiry: wapRelative(0x083D5F),
			ContentLocation: "http://mmscz/?m=m5da9g6l823ppr42w18"},
	}
	for _, m := range wapBackupsTrailing {
		t.Run(m.name, func(t *testing.T) {
			ud := wapBackupUD(t, m)
			_, err := decodeWAPPush(ud)
			if err == nil {
				t.Fatal("no error for the trailing 0x0a")
			}
			if got, want := err.Error(), "cannot decode WAP push: MMS notification: field at offset "+
				strconv.Itoa(len(ud)-1)+": octet 0x0a is neither a field code nor a field name"; got != want {
				t.Errorf("error = %q, want %q", got, want)
			}
			// Without it, the rest decodes.
			p, err := decodeWAPPush(ud[:len(ud)-1])
			if err != nil {
				t.Fatal(err)
			}
			wapCheckMMS(t, p.MMS, want[m.name])
		})
	}
}

func TestDecodeWAPPushGammuIssue300(t *testing.T) {
	p, err := decodeWAPPush(wapHex(t, wapIssue300))
	if err != nil {
		t.Fatal(err)
	}
	if p.TransactionID != 0x4F || p.ApplicationID != "x-wap-application:mms.ua" {
		t.Errorf("TID %#x, application %q", p.TransactionID, p.ApplicationID)
	}
	// 8F 81 (X-Mms-Priority) and 86 81 (X-Mms-Delivery-Report) are skipped.
	wapCheckMMS(t, p.MMS, mmsNotification{
		TransactionID: "81460494@mms1", Version: "1.2", From: "+32476493211", Subject: "",
		Class: "personal", Size: 0x017A59, Expiry: wapRelative(0x03F480),
		ContentLocation: "http://mts/?id=81460494",
	})
}

func TestDecodeWAPPushMudita(t *testing.T) {
	for _, c := range wapMudita {
		t.Run(c.name, func(t *testing.T) {
			p, err := decodeWAPPush(wapHex(t, c.pdu))
			if err != nil {
				t.Fatal(err)
			}
			if p.MMS == nil {
				t.Fatal("no MMS notification")
			}
			if got, want := p.MMS.From, c.from; got != want {
				t.Errorf("From = %q, want %q", got, want)
			}
			if got, want := p.MMS.ContentLocation, c.location; got != want {
				t.Errorf("ContentLocation = %q, want %q", got, want)
			}
		})
	}
}

func TestDecodeWAPPushMuditaRejected(t *testing.T) {
	// The MuditaOS cases that it rejects and that are malformed for WSP or
	// MMS too (not the ones it rejects by policy, such as another
	// X-Wap-Application-Id).
	for _, c := range []struct{ name, pdu, err string }{
		{"incomplete From",
			"C50603BEAF848C829831383261316237323931643835663230644070322E6D6D73632E742D6D6F62696C652E706C008D918A80" +
				"8E0285C288048102A8BE83687474703A2F2F31302E3234322E3234332E34303A393830302F6D6D313F69643D32323038313531" +
				"3832613162373238313932366630356262008918802B34383530",
			"From at offset 121: value length 24 exceeds the 6 octets left"},
		{"PDU type != Push", "000507BEAF848DDBB4818C8298416263646566676869008D92",
			"PDU type at offset 1: 0x05 is not Push (0x06)"},
		{"missing PDU content", "000608BEAF848DDBB481",
			"HeadersLen at offset 2: 8 exceeds the 7 octets left"},
		{"invalid PDU header length", "000607BEAF848DDBB481",
			"X-Mms-Message-Type at offset 10: truncated: MMS body of 0 octets"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeWAPPush(wapHex(t, c.pdu))
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error = %v, want one with %q", err, c.err)
			}
		})
	}
}

func TestDecodeWAPPushOtherMMSType(t *testing.T) {
	// MuditaOS "X-Mms-Message-Type != m-notification-ind": 8C 81
	// (m-send-conf). A valid push, but no notification.
	b := wapHex(t, "000607BEAF848DDBB4818C8198416263646566676869008D928918802B34383132333435363738392F545950453D504C4D4E008681"+
		"8A808E0285AE88048102A8BF83687474703A2F2F67656F6D323A383030322F6D6D73632F633F41626364656667686900")
	p, err := decodeWAPPush(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.MMS != nil || p.ContentType != mmsContentType || !bytes.Equal(p.Body, b[10:]) {
		t.Errorf("push = %+v, want the MMS body after 3+7 octets and no notification", p)
	}
}

// wapRealPushes returns the recorded pushes whose last field is the
// mandatory X-Mms-Content-Location, so that no proper prefix of them is a
// valid notification.
func wapRealPushes(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{
		"Plus PL":     wapDeliverUD(t, wapPlusPDUs),
		"gammu 40":    wapDeliverUD(t, []string{wapGammu40}),
		"issue 300":   wapHex(t, wapIssue300),
		"Mudita Plus": wapHex(t, wapMudita[3].pdu),
	}
	for _, m := range wapBackups {
		out[m.name] = wapBackupUD(t, m)
	}
	return out
}

func TestDecodeWAPPushTruncated(t *testing.T) {
	for name, b := range wapRealPushes(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeWAPPush(b); err != nil {
				t.Fatalf("whole: %v", err)
			}
			for i := range len(b) {
				// A copy of exactly i octets, so that reading past it would
				// panic rather than see the rest.
				c := bytes.Clone(b[:i])
				if p, err := decodeWAPPush(c); err == nil {
					t.Fatalf("prefix of %d octets: no error, %+v", i, p)
				}
			}
		})
	}
}

func TestDecodeMMSNotificationTruncated(t *testing.T) {
	for name, b := range wapRealPushes(t) {
		t.Run(name, func(t *testing.T) {
			p, err := decodeWAPPush(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeMMSNotification(p.Body); err != nil {
				t.Fatalf("whole: %v", err)
			}
			for i := range len(p.Body) {
				if _, err := decodeMMSNotification(bytes.Clone(p.Body[:i])); err == nil {
					t.Fatalf("prefix of %d octets: no error", i)
				}
			}
		})
	}
}

// wapMMS is a minimal m-notification-ind built by hand for the malformed
// cases: TID "t", version 1.0, personal, size 1, expiry in 60 s, location
// "u".
const wapMMS = "8C82" + "987400" + "8D90" + "8A80" + "8E0101" + "880381013C" + "837500"

func TestDecodeMMSNotificationFields(t *testing.T) {
	base := mmsNotification{TransactionID: "t", Version: "1.0", Class: "personal", Size: 1,
		Expiry: wapRelative(60), ContentLocation: "u"}
	with := func(f func(*mmsNotification)) mmsNotification {
		n := base
		f(&n)
		return n
	}
	for _, c := range []struct {
		name, hex string
		want      mmsNotification
	}{
		{"minimal", wapMMS, base},
		{"From 8-bit charset", wapMMS + "8906" + "80" + "0484" + "43E900", // Latin-1 "Cé"
			with(func(n *mmsNotification) { n.From = "C\u00e9" })},
		{"From withheld", wapMMS + "890181", base},
		{"From e-mail", wapMMS + "8905" + "80" + "61406200", with(func(n *mmsNotification) { n.From = "a@b" })},
		{"From /TYPE=PLMN any case", wapMMS + "890E" + "80" + "2B312F747970653D706C6D6E00",
			with(func(n *mmsNotification) { n.From = "+1" })},
		{"Subject quoted", wapMMS + "96" + "7FC3A900", with(func(n *mmsNotification) { n.Subject = "\u00e9" })},
		{"Subject any charset", wapMMS + "9603" + "80" + "7800", with(func(n *mmsNotification) { n.Subject = "x" })},
		{"class token", wapMMS[:14] + "8A" + "637573746F6D00" + wapMMS[18:],
			with(func(n *mmsNotification) { n.Class = "custom" })},
		{"class auto", wapMMS[:14] + "8A83" + wapMMS[18:], with(func(n *mmsNotification) { n.Class = "auto" })},
		{"version 1", wapMMS[:10] + "8D9F" + wapMMS[14:], with(func(n *mmsNotification) { n.Version = "1" })},
		{"expiry absolute", wapMMS[:24] + "880680045F5E1000" + wapMMS[34:],
			with(func(n *mmsNotification) {
				n.Expiry = mmsExpiry{Absolute: true, At: time.Date(2020, 9, 13, 12, 26, 40, 0, time.UTC)}
			})},
		{"expiry relative short-integer", wapMMS[:24] + "880281BC" + wapMMS[34:], base},
		{"size 8 octets", wapMMS[:18] + "8E087FFFFFFFFFFFFFFF" + wapMMS[24:],
			with(func(n *mmsNotification) { n.Size = 1<<63 - 1 })},
		{"unknown fields skipped", wapMMS + "BF80" + "8B6D696400" + "850400000001" + "B2050102030405" +
			"582D466F6F0062617200",
			base},
		{"long value length", wapMMS + "B21F03010203", base},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := decodeMMSNotification(wapHex(t, c.hex))
			if err != nil {
				t.Fatal(err)
			}
			wapCheckMMS(t, n, c.want)
		})
	}
}

func TestDecodeMMSNotificationMalformed(t *testing.T) {
	for _, c := range []struct{ name, hex, err string }{
		{"empty", "", "X-Mms-Message-Type at offset 0: truncated"},
		{"not first", "987400" + wapMMS[4:], "X-Mms-Message-Type at offset 0: the first field is 0x98"},
		{"other type", "8C80" + wapMMS[4:], "X-Mms-Message-Type at offset 1: 0x80 is not m-notification-ind"},
		{"type twice", wapMMS + "8C82", "X-Mms-Message-Type at offset 20: the field appears twice"},
		{"TID twice", wapMMS + "987400", "X-Mms-Transaction-Id at offset 20: the field appears twice"},
		{"missing location", wapMMS[:34], "X-Mms-Content-Location at offset 17: missing"},
		{"missing TID", "8C82" + wapMMS[10:], "X-Mms-Transaction-Id at offset 17: missing"},
		{"TID unterminated", "8C82" + "987475", "X-Mms-Transaction-Id at offset 3: truncated: text has no end-of-string"},
		{"TID binary", "8C82" + "98017400" + wapMMS[10:], "X-Mms-Transaction-Id at offset 3: octet 0x01 cannot start"},
		{"version not short", "8C82" + "987400" + "8D10" + wapMMS[14:], "X-Mms-MMS-Version at offset 6: octet 0x10"},
		{"From bad token", wapMMS + "890182", "From at offset 22: token 0x82"},
		{"From too long", wapMMS + "891E80", "From at offset 21: value length 30 exceeds the 1 octets left"},
		{"From trailing", wapMMS + "89038100FF", "From at offset 23: 2 octets after the address"},
		{"From empty", wapMMS + "8900", "From at offset 22: truncated"},
		{"From huge uintvar", wapMMS + "891FFFFFFFFF7F", "From at offset 22: uintvar 34359738367 exceeds 32 bits"},
		{"From 6-octet uintvar", wapMMS + "891F808080808001", "From at offset 22: uintvar longer than 5 octets"},
		{"From uintvar too long for data", wapMMS + "891F8F7F00", "From at offset 21: value length 2047 exceeds the 1 octets left"},
		{"Subject charset", wapMMS + "9604" + "0203E8" + "00", "Subject at offset 22: charset 1000 is not supported"},
		{"Subject bad UTF-8", wapMMS + "9603EAFF00", "Subject at offset 23: octet 0xff cannot start"},
		{"Subject not UTF-8", wapMMS + "9604EA61FF00", "Subject at offset 23: text is not valid in charset 106"},
		{"Subject no end", wapMMS + "9602EA61", "Subject at offset 23: truncated: text has no end-of-string"},
		{"class unknown", wapMMS[:14] + "8A84" + wapMMS[18:], "X-Mms-Message-Class at offset 8: 0x84 is not a message class"},
		{"size 0 octets", wapMMS[:18] + "8E00" + wapMMS[24:], "X-Mms-Message-Size at offset 10: long-integer of 0 octets"},
		{"size 9 octets", wapMMS[:18] + "8E09010203040506070809" + wapMMS[24:], "X-Mms-Message-Size at offset 10: long-integer of 9 octets exceeds 64 bits"},
		{"size too large", wapMMS[:18] + "8E088000000000000000" + wapMMS[24:], "X-Mms-Message-Size at offset 10: 9223372036854775808 is too large"},
		{"size not long", wapMMS[:18] + "8E81" + wapMMS[24:], "X-Mms-Message-Size at offset 10: octet 0x81 is not a long-integer length"},
		{"size truncated", "8C82" + "8E0401", "X-Mms-Message-Size at offset 3: truncated: long-integer of 4 octets, 1 left"},
		{"expiry token", wapMMS[:24] + "880382013C" + wapMMS[34:], "X-Mms-Expiry at offset 14: token 0x82"},
		{"expiry trailing", wapMMS[:24] + "880481013C00" + wapMMS[34:], "X-Mms-Expiry at offset 17: 1 octets after the time"},
		{"expiry too long", wapMMS[:24] + "880A8108FFFFFFFFFFFFFFFF" + wapMMS[34:], "X-Mms-Expiry at offset 15: 18446744073709551615 seconds is too long"},
		{"expiry date too large", wapMMS[:24] + "880A8008FFFFFFFFFFFFFFFF" + wapMMS[34:], "X-Mms-Expiry at offset 15: date 18446744073709551615 is too large"},
		{"expiry empty", wapMMS[:24] + "8800" + wapMMS[34:], "X-Mms-Expiry at offset 14: truncated"},
		{"unknown field no end", wapMMS + "8B6D6964", "field 0x8b at offset 21: truncated"},
		{"unknown field too long", wapMMS + "B21E00", "field 0xb2 at offset 21: value length 30 exceeds"},
		{"unknown field missing value", wapMMS + "B2", "field 0xb2 at offset 21: truncated"},
		{"control octet", wapMMS + "0A", "field at offset 20: octet 0x0a is neither"},
		{"DEL octet", wapMMS + "7F", "field at offset 20: octet 0x7f is neither"},
		{"application field no value", wapMMS + "582D466F6F00", "application field X-Foo at offset 26: truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeMMSNotification(wapHex(t, c.hex))
			if err == nil || !strings.HasPrefix(err.Error(), "cannot decode MMS notification: ") ||
				!strings.Contains(err.Error(), c.err) {
				t.Fatalf("error = %v, want one with %q", err, c.err)
			}
		})
	}
}

func TestDecodeWAPPushMalformed(t *testing.T) {
	for _, c := range []struct{ name, hex, err string }{
		{"empty", "", "TID at offset 0: truncated"},
		{"no PDU type", "00", "PDU type at offset 1: truncated"},
		{"confirmed push", "0007", "PDU type at offset 1: 0x07 is not Push"},
		{"no HeadersLen", "0006", "HeadersLen at offset 2: truncated uintvar"},
		{"HeadersLen truncated", "000681", "HeadersLen at offset 2: truncated uintvar"},
		{"HeadersLen 0", "000600", "Content-Type at offset 3: missing"},
		{"HeadersLen too long", "000605BE", "HeadersLen at offset 2: 5 exceeds the 1 octets left"},
		{"HeadersLen 32 bits", "00068FFFFFFF7FBE", "HeadersLen at offset 2: 4294967295 exceeds the 1 octets left"},
		{"HeadersLen over 32 bits", "0006FFFFFFFF7F", "HeadersLen at offset 2: uintvar 34359738367 exceeds 32 bits"},
		{"HeadersLen 6 octets", "0006808080808001", "HeadersLen at offset 2: uintvar longer than 5 octets"},
		{"Content-Type length", "0006031F2261", "Content-Type at offset 3: value length 34 exceeds the 1 octets left"},
		{"Content-Type huge", "0006061FFFFFFFFF7F", "Content-Type at offset 4: uintvar 34359738367 exceeds 32 bits"},
		{"Content-Type text no end", "0006036162", "HeadersLen at offset 2: 3 exceeds the 2 octets left"},
		{"Content-Type text unterminated", "000602616200", "Content-Type at offset 3: truncated: text has no end-of-string"},
		{"Content-Type empty general form", "00060100", "Content-Type at offset 4: truncated"},
		{"Content-Type general form long-integer", "000603020203", "Content-Type at offset 4: truncated: long-integer of 2 octets, 1 left"},
		{"Content-Type general form 31", "000603021F00", "Content-Type at offset 4: octet 0x1f cannot start"},
		{"header value too long", "000603BEAF05", "header 0x2f at offset 5: value length 5 exceeds the 0 octets left"},
		{"header value missing", "000602BEAF", "header 0x2f at offset 5: truncated"},
		{"header octet 0", "000602BE00", "header at offset 4: octet 0x00"},
		{"header page 0", "000603BE7F00", "header code page at offset 5: page 0 does not exist"},
		{"header page missing", "000602BE7F", "header code page at offset 5: truncated"},
		{"application id 31", "000605BEAF1F0100", "X-Wap-Application-Id at offset 5: octet 0x1f is not a long-integer length"},
		{"application header no value", "000605BE582D4100", "application header X-A at offset 8: truncated"},
		{"MMS body short", "000601BE8C", "X-Mms-Message-Type at offset 5: truncated: MMS body of 1 octets"},
		{"MMS body not MMS", "000601BE98610A", "X-Mms-Message-Type at offset 4: MMS body starts with 0x98 0x61"},
		{"MMS notification bad", "000601BE8C82", "MMS notification: X-Mms-Transaction-Id at offset 6: missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeWAPPush(wapHex(t, c.hex))
			if err == nil || !strings.HasPrefix(err.Error(), "cannot decode WAP push: ") ||
				!strings.Contains(err.Error(), c.err) {
				t.Fatalf("error = %v, want one with %q", err, c.err)
			}
		})
	}
}

func TestDecodeWAPPushContentTypes(t *testing.T) {
	for _, c := range []struct{ name, hex, ct, app string }{
		{"SI well-known", "010603AEAF81", "application/vnd.wap.sic", "x-wap-application:push.sia"},
		{"SL", "010601B0", "application/vnd.wap.slc", ""},
		{"text", "01060B746578742F706C61696E00", "text/plain", ""},
		{"general form short-integer", "01060201B0", "application/vnd.wap.slc", ""},
		{"general form long-integer", "010604030203 0A", "0x30a", ""},
		{"unknown short-integer", "010601FF", "0x7f", ""},
		{"application id long", "010605B0AF020123", "application/vnd.wap.slc", "0x123"},
		{"application id text", "01060DB0AF782D6170703A782E756100", "application/vnd.wap.slc", "x-app:x.ua"},
		{"application id in page 2", "010604B002AF84", "application/vnd.wap.slc", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := decodeWAPPush(wapHex(t, strings.ReplaceAll(c.hex, " ", "")))
			if err != nil {
				t.Fatal(err)
			}
			if p.ContentType != c.ct || p.ApplicationID != c.app || p.MMS != nil {
				t.Errorf("push = %q, %q, MMS %v; want %q, %q", p.ContentType, p.ApplicationID, p.MMS, c.ct, c.app)
			}
		})
	}
}

func TestWAPAppPorts(t *testing.T) {
	for _, c := range []struct {
		name     string
		udh      tpdu.UserDataHeader
		dst, src int
		ok       bool
	}{
		{"16-bit", tpdu.UserDataHeader{{ID: 0x05, Data: []byte{0x0B, 0x84, 0x23, 0xF0}}}, 2948, 9200, true},
		{"16-bit after concat", tpdu.UserDataHeader{{ID: 0x00, Data: []byte{0x83, 0x02, 0x01}},
			{ID: 0x05, Data: []byte{0x0B, 0x85, 0x23, 0xF1}}}, 2949, 9201, true},
		{"8-bit", tpdu.UserDataHeader{{ID: 0x04, Data: []byte{0xF5, 0xF6}}}, 0xF5, 0xF6, true},
		{"16-bit preferred", tpdu.UserDataHeader{{ID: 0x04, Data: []byte{0x01, 0x02}},
			{ID: 0x05, Data: []byte{0x0B, 0x84, 0x23, 0xF0}}}, 2948, 9200, true},
		{"16-bit wrong length", tpdu.UserDataHeader{{ID: 0x05, Data: []byte{0x0B, 0x84, 0x23}}}, 0, 0, false},
		{"8-bit wrong length", tpdu.UserDataHeader{{ID: 0x04, Data: []byte{0x01}}}, 0, 0, false},
		{"concat only", tpdu.UserDataHeader{{ID: 0x00, Data: []byte{0x83, 0x02, 0x01}}}, 0, 0, false},
		{"none", nil, 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst, src, ok := appPorts(c.udh)
			if got, want := [3]any{dst, src, ok}, [3]any{c.dst, c.src, c.ok}; got != want {
				t.Fatalf("appPorts = %v, want %v", got, want)
			}
		})
	}
}

func FuzzDecodeWAPPush(f *testing.F) {
	seeds := [][]byte{}
	add := func(s string) {
		b, err := hex.DecodeString(s)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	add(wapIssue300)
	for _, c := range wapMudita {
		add(c.pdu)
	}
	for _, m := range append(append([]wapBackup(nil), wapBackups...), wapBackupsTrailing...) {
		add(strings.Join(m.text, ""))
	}
	// The Plus PL pair, its user data reassembled.
	var plus []byte
	for _, s := range wapPlusPDUs {
		p, err := pdumode.UnmarshalHexString(s)
		if err != nil {
			f.Fatal(err)
		}
		var d tpdu.TPDU
		if err := d.UnmarshalBinary(p.TPDU); err != nil {
			f.Fatal(err)
		}
		plus = append(plus, d.UD...)
	}
	seeds = append(seeds, plus)
	for _, s := range []string{wapGammu40, wapGammu33} {
		p, err := pdumode.UnmarshalHexString(s)
		if err != nil {
			f.Fatal(err)
		}
		var d tpdu.TPDU
		if err := d.UnmarshalBinary(p.TPDU); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, d.UD)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		p, err := decodeWAPPush(b)
		if !bytes.Equal(in, b) {
			t.Fatal("decodeWAPPush changed its input")
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cannot decode WAP push: ") || !strings.Contains(err.Error(), " at offset ") {
				t.Fatalf("error %q does not say where", err)
			}
		} else {
			if p.MMS != nil && !strings.EqualFold(p.ContentType, mmsContentType) {
				t.Fatalf("MMS notification in a %q push", p.ContentType)
			}
			if !bytes.HasSuffix(b, p.Body) {
				t.Fatal("body is not the end of the PDU")
			}
		}
		n, err := decodeMMSNotification(b)
		if err == nil && n.Version == "" {
			t.Fatalf("notification without its mandatory fields: %+v", n)
		}
	})
}
