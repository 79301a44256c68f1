-- Demo data: five missions, ids 1..5, so the console and the walk-through have something to show.
INSERT INTO missions (id, codename, status, location, objective, handler_notes, asset_identity, extraction_code, updated_at) VALUES
 (1, 'Nightingale', 'active',    'Vienna',    'Recover the ledger from the embassy archive', 'Asset nervous; meet only at dawn', 'K. Brandt, clerk', 'EX-7731-ALPHA', '2026-01-01T00:00:00.000Z'),
 (2, 'Glass Harbor', 'planned',  'Lisbon',    'Map the courier route through the docks',     'Budget approved by D.',            'M. Sousa, pilot', 'EX-2290-BRAVO', '2026-01-01T00:00:00.000Z'),
 (3, 'Iron Lantern', 'active',   'Istanbul',  'Photograph the shipment manifests',           'Handler rotates weekly',           'A. Demir, broker', 'EX-4417-CHARLIE', '2026-01-01T00:00:00.000Z'),
 (4, 'Silent Meridian', 'completed', 'Oslo',  'Extract the defector safely',                 'Debrief pending',                  'L. Haugen, engineer', 'EX-9902-DELTA', '2026-01-01T00:00:00.000Z'),
 (5, 'Paper Tiger', 'planned',   'Nairobi',   'Verify the satellite imagery leak',           'Source unverified',                'J. Otieno, analyst', 'EX-5120-ECHO', '2026-01-01T00:00:00.000Z');
-- Explicit ids do not advance the identity: continue after the demo rows.
SELECT setval(pg_get_serial_sequence('missions', 'id'), (SELECT MAX(id) FROM missions));
