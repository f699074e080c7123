/**
 * The layer catalog (daemon/catalog.ts) over a real layer store in a temporary folder: a layer
 * folder it cannot use is said once per version of its layer.json, not on every reload (the agent
 * reloads the catalog on every switch).
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LayerCatalog } from '../../daemon/catalog';
import { LayerStore } from '../../daemon/store';

describe('layer catalog', () => {
  let home: string;
  let store: LayerStore;
  let logs: string[];
  let catalog: LayerCatalog;

  beforeEach(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-catalog-'));
    store = new LayerStore(home);
    const src = path.join(home, 'src');
    fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(src, 'bin', 'tool'), '#!/bin/sh\n');
    await store.create('good', src, { version: '1' });
    logs = [];
    catalog = new LayerCatalog(
      store,
      () => ['good', 'half'],
      (m) => logs.push(m),
    );
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  const skips = (name: string) => logs.filter((l) => l.startsWith(`[store] layer ${name} skipped:`));

  it('says once that a folder has no layer.json, however often it reloads', async () => {
    fs.mkdirSync(store.dir('half'));
    for (let i = 0; i < 3; i++) await catalog.reload();
    assert.equal(skips('half').length, 1, logs.join('\n'));
    assert.deepEqual(catalog.effectiveActive(), ['good']);
  });

  it('reads the folder again once a layer.json appears, and says again when that one is broken', async () => {
    fs.mkdirSync(store.dir('half'));
    await catalog.reload();
    fs.writeFileSync(path.join(store.dir('half'), 'layer.json'), '{ not json');
    await catalog.reload();
    await catalog.reload();
    assert.equal(skips('half').length, 2, logs.join('\n'));
    fs.rmSync(store.dir('half'), { recursive: true });
    fs.cpSync(store.dir('good'), store.dir('half'), { recursive: true });
    const spec = JSON.parse(fs.readFileSync(path.join(store.dir('half'), 'layer.json'), 'utf8'));
    fs.writeFileSync(path.join(store.dir('half'), 'layer.json'), JSON.stringify({ ...spec, name: 'half' }));
    await catalog.reload();
    assert.deepEqual(catalog.effectiveActive(), ['good', 'half'], logs.join('\n'));
  });
});
