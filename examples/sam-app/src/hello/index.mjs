// Serves both the function URL (payload 2.0) and GET /hello/{name} on the REST API (1.0).
export const handler = async (event) => {
  const name = event.pathParameters?.name ?? event.queryStringParameters?.name ?? 'world';
  return {
    statusCode: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: `${process.env.GREETING}, ${name}!`,
  };
};
