/** GET /items and GET /items/{id} on the HTTP API (payload format 2.0). */

interface HttpApiEvent {
  routeKey: string;
  pathParameters?: Record<string, string>;
  queryStringParameters?: Record<string, string>;
}

interface Item {
  id: string;
  name: string;
}

const items: Item[] = [
  { id: '1', name: 'kettle' },
  { id: '2', name: 'teapot' },
];

const json = (statusCode: number, body: unknown) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export const handler = async (event: HttpApiEvent) => {
  if (event.routeKey === 'GET /items') return json(200, { items, table: process.env.TABLE_NAME });
  const item = items.find((i) => i.id === event.pathParameters?.id);
  return item ? json(200, item) : json(404, { message: `no item ${event.pathParameters?.id}` });
};
