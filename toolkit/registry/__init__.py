"""The release registry: its folders and bundles (store), the tamper-evident ledger, signing keys."""
