/** How components reach the one store: a context holding it, and a selector hook over it. */
import { createContext, useContext } from 'react';
import { useStore, type StoreApi } from 'zustand';
import type { AppState } from './store.js';

export const HubContext = createContext<StoreApi<AppState> | null>(null);

export function useHub<T>(selector: (state: AppState) => T): T {
  const store = useContext(HubContext);
  if (store === null) throw new Error('useHub needs a HubContext provider');
  return useStore(store, selector);
}

export function useActions(): AppState['actions'] {
  return useHub((s) => s.actions);
}
