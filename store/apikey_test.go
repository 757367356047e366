package store_test

import (
	"path/filepath"
	"testing"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/storetest"
)

func TestAPIKeys(t *testing.T) {
	storetest.APIKeys(t, func(t *testing.T, now simgate.Clock) storetest.KeyStore {
		return MustOpenDBAt(t, filepath.Join(t.TempDir(), "simgate.db"), store.Options{Now: now})
	})
}
