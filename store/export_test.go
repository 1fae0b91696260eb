package store

import "context"

// MigrateTo applies the migrations up to version v, for tests of the history.
func (s *Store) MigrateTo(ctx context.Context, v int) ([]Migration, error) {
	return s.migrateTo(ctx, v)
}

// StoreModels are the models the migrations must reproduce.
var StoreModels = storeModels
