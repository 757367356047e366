package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/storetest"
)

// A modem is recorded with its identity; an identity field left empty keeps
// what was known; an IMEI seen under another name moves to it. (No store
// method reads the modems back, so this test reads the table.)
func TestUpsertModem(t *testing.T) {
	ctx := context.Background()
	dsn := newDatabase(t)
	clk := storetest.NewClock()
	db, err := Open(ctx, dsn, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ident := simgate.ModemIdentity{IMEI: "356938035643809", ICCID: "8949000000000000001", Model: "EC25"}
	if err := db.UpsertModem(ctx, "m0", ident); err != nil {
		t.Fatal(err)
	}
	if err := db.UpsertModem(ctx, "m0", simgate.ModemIdentity{IMEI: "356938035643809", Revision: "EC25EFAR06A01M4G"}); err != nil {
		t.Fatal(err)
	}
	if err := db.UpsertModem(ctx, "m1", simgate.ModemIdentity{IMEI: "356938035643809"}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	type row struct {
		ID, ICCID, Model, Revision string
		IMEI                       *string
	}
	rows, _ := conn.Query(ctx, `SELECT id, iccid, model, revision, imei FROM modems ORDER BY id`)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].IMEI != nil || got[0].ICCID != ident.ICCID || got[0].Model != "EC25" || got[0].Revision != "EC25EFAR06A01M4G" ||
		got[1].IMEI == nil || *got[1].IMEI != ident.IMEI {
		t.Fatalf("modems %+v; want m0 with its identity kept and no IMEI, m1 with the IMEI", got)
	}
}
